// The epilogue of the buffer matmul variants: output bindings as f32 arrays, and the bias,
// activation forward or activation backward applied as each output is stored. A library,
// not a kernel: appended to matmul.wgsl and matmul_vec4.wgsl, which declare the inputs `a`
// and `b` (binding 1 and 2, scalar or vec4) and `fn bias_at(j) -> f32` (the bias lives in b).
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
