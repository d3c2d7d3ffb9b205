// The backward of a narrow dense layer (few outputs) in one launch: its weight gradient, its
// bias gradient and the input gradient handed to the layer below, with the same bits as the
// separate launches it replaces (`matmul_with_sums` for dW and db, then the ABt product with
// the activation-backward epilogue).
//
// Shapes (n = p.n outputs, k = p.k inputs, h [rows, k] the layer's input, dZ [rows, n]):
//   dW [k, n] at grads[dw_off]: dW(q, j) = sum_r h(r, q) dZ(r, j)        (the AtB product)
//   db [n]    at grads[db_off]: db(j) = sum_r dZ(r, j)                   (column sums)
//   dX [rows, k] at dx[dx_off]:
//     dX(r, q) = (sum_j dZ(r, j) W(q, j)) * act_grad(act, z[z_off + r k + q])  (ABt, epilogue)
//
// Same bits: each output is one lane's `acc = acc + a * b` over the inner index in order from
// 0.0 (rows for dW, outputs for dX), as every matmul variant adds; each column sum adds the
// rows in order from 0.0, as column_sums does; dX's store is matmul_epilogue.wgsl's
// `v * act_grad(code, z)` (1.0 for the identity: the same value).
//
// How the work is spread: one item per invocation, in a flat index over the grid (folded into
// y past 65535 workgroups): first dW's blocks of 4 inputs x 4 outputs (the longest items, a
// loop over the rows, so they start first), then db's columns, then dX's blocks of 4 rows x
// 4 inputs (a loop over the n outputs). No item reads what another writes (dW and db go to
// grads, dX to dx), so there is no barrier and no shared memory: the driver spreads the
// workgroups over its threads as it does a matmul's.
//
// dense_backward_tex also writes dX into an rgba32float texture, as pack_texture.wgsl lays a
// matrix out (texel (x, r) = dX(r, 4x..4x+3)), when the layer below's weight gradient runs a
// texture matmul variant that reads dX as B: the pack launch it would need goes away. The
// same floats go to the buffer and the texture.
//
// The parameters are a read-only storage buffer, not a uniform: lavapipe (Mesa 22-23) inlines
// uniform values into a shader whose loop bounds read them, and with this kernel's uniform it
// spent ~30 ms of its own (non-JIT) time per step doing so (a 10-64-64-10 step at batch 32:
// 31 ms with a uniform, 1.2 ms without; perf: 84% in libvulkan_lvp.so, 3% in the shader).
// Requires: activation_fns.wgsl

// Written once when the launch is recorded (a storage buffer: see above).
struct Params {
    rows: u32,
    n: u32,
    k: u32,
    act: u32,
    h_off: u32,
    dz_off: u32,
    w_off: u32,
    dw_off: u32,
    db_off: u32,
    z_off: u32,
    dx_off: u32,
    // Items: dW blocks in [0, dw_blocks), db columns in [dw_blocks, dx_start), dX blocks in
    // [dx_start, total).
    dw_blocks: u32,
    dx_start: u32,
    total: u32,
    pad0: u32,
    pad1: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> dz: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read> z: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
// dX as texels, bound by dense_backward_tex only (k % 4 == 0 there: the host checks).
@group(0) @binding(7) var dx_tex: texture_storage_2d<rgba32float, write>;

// A dX block as stored: rows r0..r0+3 (those past the batch not stored), inputs q0..q0+3.
struct DxBlock {
    r0: u32,
    q0: u32,
    v0: vec4<f32>,
    v1: vec4<f32>,
    v2: vec4<f32>,
    v3: vec4<f32>,
}

// dW's block `blk`: inputs q0..q0+3 x outputs j0..j0+3, summed over the rows. Loads are
// clamped into h and dZ (valid memory, no branch in the loop); only outputs inside are stored.
fn dw_block(blk: u32) {
    let col_blocks = (p.n + 3u) / 4u;
    let q0 = (blk / col_blocks) * 4u;
    let j0 = (blk % col_blocks) * 4u;
    let lq = p.k - 1u;
    let lc = p.n - 1u;
    let qa = vec4<u32>(min(q0, lq), min(q0 + 1u, lq), min(q0 + 2u, lq), min(q0 + 3u, lq)) + p.h_off;
    let jd = vec4<u32>(min(j0, lc), min(j0 + 1u, lc), min(j0 + 2u, lc), min(j0 + 3u, lc)) + p.dz_off;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var r = 0u; r < p.rows; r = r + 1u) {
        let hr = r * p.k;
        let dr = r * p.n;
        let dv = vec4<f32>(dz[jd.x + dr], dz[jd.y + dr], dz[jd.z + dr], dz[jd.w + dr]);
        acc0 = acc0 + h[qa.x + hr] * dv;
        acc1 = acc1 + h[qa.y + hr] * dv;
        acc2 = acc2 + h[qa.z + hr] * dv;
        acc3 = acc3 + h[qa.w + hr] * dv;
    }
    // Bounds guard: inputs past k were computed from clamped loads; not stored.
    store_dw4(q0, j0, acc0);
    if (q0 + 1u <= lq) {
        store_dw4(q0 + 1u, j0, acc1);
    }
    if (q0 + 2u <= lq) {
        store_dw4(q0 + 2u, j0, acc2);
    }
    if (q0 + 3u <= lq) {
        store_dw4(q0 + 3u, j0, acc3);
    }
}

// Stores dW(q, j0 + t) = v[t] for the outputs of the block inside the layer.
fn store_dw4(q: u32, j0: u32, v: vec4<f32>) {
    // A bound the compiler cannot see keeps this a loop (see store_row4 in matmul_epilogue.wgsl).
    let count = min(4u, p.n - j0);
    for (var t = 0u; t < count; t = t + 1u) {
        grads[p.dw_off + q * p.n + j0 + t] = v[t];
    }
}

// db(j) = the rows of dZ's column j added in order from 0.0.
fn db_column(j: u32) {
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r = r + 1u) {
        acc = acc + dz[p.dz_off + r * p.n + j];
    }
    grads[p.db_off + j] = acc;
}

// dX's block `blk`: rows r0..r0+3 x inputs q0..q0+3, summed over the outputs, each stored
// times the layer below's activation derivative at z. Returns what it stored.
fn dx_block(blk: u32) -> DxBlock {
    let col_blocks = (p.k + 3u) / 4u;
    let r0 = (blk / col_blocks) * 4u;
    let q0 = (blk % col_blocks) * 4u;
    let lr = p.rows - 1u;
    let lq = p.k - 1u;
    let rd = vec4<u32>(min(r0, lr), min(r0 + 1u, lr), min(r0 + 2u, lr), min(r0 + 3u, lr)) * p.n + p.dz_off;
    let qw = vec4<u32>(min(q0, lq), min(q0 + 1u, lq), min(q0 + 2u, lq), min(q0 + 3u, lq)) * p.n + p.w_off;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var j = 0u; j < p.n; j = j + 1u) {
        let wv = vec4<f32>(params[qw.x + j], params[qw.y + j], params[qw.z + j], params[qw.w + j]);
        acc0 = acc0 + dz[rd.x + j] * wv;
        acc1 = acc1 + dz[rd.y + j] * wv;
        acc2 = acc2 + dz[rd.z + j] * wv;
        acc3 = acc3 + dz[rd.w + j] * wv;
    }
    // Bounds guard: rows past the batch were computed from clamped loads; not stored.
    var out = DxBlock(r0, q0, store_dx4(r0, q0, acc0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    if (r0 + 1u <= lr) {
        out.v1 = store_dx4(r0 + 1u, q0, acc1);
    }
    if (r0 + 2u <= lr) {
        out.v2 = store_dx4(r0 + 2u, q0, acc2);
    }
    if (r0 + 3u <= lr) {
        out.v3 = store_dx4(r0 + 3u, q0, acc3);
    }
    return out;
}

// Stores dX(r, q0 + t) = v[t] * act'(z(r, q0 + t)) for the inputs of the block inside the
// layer; returns the stored values (0.0 past the layer's inputs).
fn store_dx4(r: u32, q0: u32, v: vec4<f32>) -> vec4<f32> {
    // A bound the compiler cannot see keeps this a loop (see store_row4 in matmul_epilogue.wgsl).
    let count = min(4u, p.k - q0);
    var stored = vec4<f32>(0.0);
    for (var t = 0u; t < count; t = t + 1u) {
        let idx = r * p.k + q0 + t;
        stored[t] = v[t] * act_grad(p.act, z[p.z_off + idx]);
        dx[p.dx_off + idx] = stored[t];
    }
    return stored;
}

// The flat item index of this invocation.
fn item_index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + li;
}

// A dW block or a db column; false for a dX item.
fn weight_item(item: u32) -> bool {
    if (item < p.dw_blocks) {
        dw_block(item);
        return true;
    }
    if (item < p.dx_start) {
        db_column(item - p.dw_blocks);
        return true;
    }
    return false;
}

@compute @workgroup_size(64)
fn dense_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let item = item_index(wid, nwg, li);
    if (!weight_item(item) && item < p.total) {
        _ = dx_block(item - p.dx_start);
    }
}

@compute @workgroup_size(64)
fn dense_backward_tex(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let item = item_index(wid, nwg, li);
    if (!weight_item(item) && item < p.total) {
        let b = dx_block(item - p.dx_start);
        // The rows dx_block stored (k % 4 == 0: each row of the block is one whole texel).
        let x = b.q0 / 4u;
        textureStore(dx_tex, vec2<u32>(x, b.r0), b.v0);
        if (b.r0 + 1u < p.rows) {
            textureStore(dx_tex, vec2<u32>(x, b.r0 + 1u), b.v1);
        }
        if (b.r0 + 2u < p.rows) {
            textureStore(dx_tex, vec2<u32>(x, b.r0 + 2u), b.v2);
        }
        if (b.r0 + 3u < p.rows) {
            textureStore(dx_tex, vec2<u32>(x, b.r0 + 3u), b.v3);
        }
    }
}
