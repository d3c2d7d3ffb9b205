// The epilogue of the buffer matmul variants: output bindings as f32 arrays, and the bias,
// activation forward or activation backward applied as each output is stored. A library,
// not a kernel: appended to matmul.wgsl and matmul_vec4.wgsl, which declare the inputs `a`
// and `b` (binding 1 and 2, scalar or vec4), `fn bias_at(j) -> f32` (the bias lives in b) and
// `fn b_at(q, j) -> f32`.
// Uses matmul_params.wgsl and activation_fns.wgsl.

@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;

// Writes C(i, j) = epilogue(acc). Callers guarantee i < m and j < n.
fn store(i: u32, j: u32, acc: f32) {
    // Plain products (weight gradients) skip the epilogue's branches: they write the
    // most outputs of a training step (784 x 64 for the first layer).
    if (p.flags == 0u) {
        c[p.c_off + i * p.n + j] = acc;
        return;
    }
    var v = acc;
    if ((p.flags & HAS_BIAS) != 0u) {
        v = v + bias_at(j);
    }
    let idx = i * p.n + j;
    let code = (p.flags >> 8u) & 0xffu;
    if ((p.flags & ACT_BACKWARD) != 0u) {
        v = v * act_grad(code, z[p.z_off + idx]);
    } else {
        if ((p.flags & WRITE_PRE) != 0u) {
            z[p.z_off + idx] = v;
        }
        v = act_apply(code, v);
    }
    c[p.c_off + idx] = v;
}

// Stores up to 4 consecutive outputs of row i starting at column j0, skipping those outside C.
fn store_row4(i: u32, j0: u32, v: vec4<f32>) {
    // Bounds guard: rows past m and columns past n were computed from clamped loads.
    if (i >= p.m || j0 >= p.n) {
        return;
    }
    // A bound the compiler cannot see, so that the loop stays a loop: unrolled, each of a
    // kernel's stores held four copies of `store` and its activation switches, and lavapipe
    // spent 0.7-0.8 s compiling mm_rb4x4 (0.12-0.2 s with the loop).
    let count = min(4u, p.n - j0);
    for (var t = 0u; t < count; t = t + 1u) {
        store(i, j0 + t, v[t]);
    }
}

// The column sums of B, c[sums_off + j] = sum_q B(q, j), folded into the product's launch: the
// bias gradient db = column sums of dZ beside dW = X^T dZ, which reads the same dZ. The host
// adds a row of workgroups along y past the product's (from p.sums_row) when p.col_sums is set;
// they come here, invocation `slot` of `slots` taking columns slot, slot + slots, ... (every
// tiling gives slots >= n, so each takes one column at most: `grid_tests` in matmul.rs).
// (One row along y, not a second slice along z: lavapipe ran 784x64x128 AtB 1.5-2x slower
// with a z slice of 49 workgroups that return at once; see BENCHMARKS.md.)
// Same bits as reduce.wgsl's column_sums: rows added one at a time in order from 0.0 (loaded
// eight ahead, as column_sums_batched does: a GPU keeps the loads in flight).
fn col_sums_slice(wid: vec3<u32>, nwg: vec3<u32>, li: u32, wg: u32) {
    let slots = nwg.x * (nwg.y - p.sums_row) * wg;
    let groups = p.k / 8u;
    // Bounds guard: columns past n.
    for (var j = ((wid.y - p.sums_row) * nwg.x + wid.x) * wg + li; j < p.n; j = j + slots) {
        var acc = 0.0;
        for (var g = 0u; g < groups; g = g + 1u) {
            let q = g * 8u;
            let v0 = b_at(q, j);
            let v1 = b_at(q + 1u, j);
            let v2 = b_at(q + 2u, j);
            let v3 = b_at(q + 3u, j);
            let v4 = b_at(q + 4u, j);
            let v5 = b_at(q + 5u, j);
            let v6 = b_at(q + 6u, j);
            let v7 = b_at(q + 7u, j);
            acc = acc + v0;
            acc = acc + v1;
            acc = acc + v2;
            acc = acc + v3;
            acc = acc + v4;
            acc = acc + v5;
            acc = acc + v6;
            acc = acc + v7;
        }
        for (var q = groups * 8u; q < p.k; q = q + 1u) {
            acc = acc + b_at(q, j);
        }
        c[p.sums_off + j] = acc;
    }
}
