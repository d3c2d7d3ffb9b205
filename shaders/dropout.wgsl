// Inverted dropout, forward and backward, the keep decision drawn by Philox-4x32-10 (Salmon et
// al., SC 2011; Random123's philox4x32_R(10, ...)): the same function as src/spec/dropout.rs,
// whose tests hold Random123's known answers, so the CPU and the GPU drop the same elements.
//
//   keep(r, u)       = philox(counter = (row_base + r, u / 4, t, layer), key)[u % 4] >= threshold
//   dropout_forward:  out[r, u] = train ? select(0, x[r, u] * scale, keep(r, u)) : x[r, u]
//   dropout_backward: out[r, u] = select(0, x[r, u] * scale, keep(r, u)) * act'(z[r, u])
//                     (x = dy, the gradient of the dropout's output; z = the pre-activation of
//                     the layer below, whose activation code is `code`)
//
// Shapes: x, z, out: [rows, units] row-major, at offsets in_off, z_off, out_off (floats).
// Bindings: 0 params (uniform), 1 step (uniform, this launch's optimizer step t and the
// position of its first row in the global batch, copied before each launch), 2 x (read),
// 3 z (read; unused by the forward), 4 out (read_write).
// Grid: 1-D over rows * ceil(units / 4), one Philox draw (four units of a row) per invocation,
// folded into y when it needs more than 65535 workgroups.
// Requires: activation_fns.wgsl

const WG: u32 = 256u;

// Philox-4x32's multipliers and Weyl key increments (Random123, philox.h).
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

struct DropoutParams {
    rows: u32, units: u32, layer: u32, threshold: u32,
    key0: u32, key1: u32, scale: f32, code: u32,
    in_off: u32, z_off: u32, out_off: u32, train: u32,
}

// The gather's per-launch uniform (GatherStep in src/gpu/kernels/gather.rs).
struct Step {
    start: u32, t: u32, row_base: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: DropoutParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// The high and low words of the 64-bit product a * b, from 16-bit halves (WGSL has no u64):
// mid gathers the carries of the low word and stays below 3 * 2^16.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = ((a_lo * b_lo) >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = vec2<u32>(k.x + PHILOX_W0, k.y + PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// The four Philox words of invocation i: units 4q..4q+3 of row r, where i = r * quads + q.
fn words_of(i: u32) -> vec4<u32> {
    let quads = (p.units + 3u) / 4u;
    let r = i / quads;
    let q = i % quads;
    return philox4x32_10(vec4<u32>(step.row_base + r, q, step.t, p.layer), vec2<u32>(p.key0, p.key1));
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let quads = (p.units + 3u) / 4u;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.rows * quads) {
        return;
    }
    let r = i / quads;
    let u0 = (i % quads) * 4u;
    let w = words_of(i);
    for (var j = 0u; j < 4u; j++) {
        let u = u0 + j;
        // Bounds guard: the row's last quad may hold fewer than four units.
        if (u >= p.units) {
            break;
        }
        let e = r * p.units + u;
        let v = x[p.in_off + e];
        if (p.train == 0u) {
            out[p.out_off + e] = v;
        } else {
            out[p.out_off + e] = select(0.0, v * p.scale, w[j] >= p.threshold);
        }
    }
}

@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let quads = (p.units + 3u) / 4u;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.rows * quads) {
        return;
    }
    let r = i / quads;
    let u0 = (i % quads) * 4u;
    let w = words_of(i);
    for (var j = 0u; j < 4u; j++) {
        let u = u0 + j;
        // Bounds guard: the row's last quad may hold fewer than four units.
        if (u >= p.units) {
            break;
        }
        let e = r * p.units + u;
        let g = select(0.0, x[p.in_off + e] * p.scale, w[j] >= p.threshold);
        out[p.out_off + e] = g * act_grad(p.code, z[p.z_off + e]);
    }
}
