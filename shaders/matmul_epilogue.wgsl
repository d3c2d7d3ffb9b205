// The epilogue every matmul variant shares: bias, activation forward, or activation backward.
// A library, not a kernel: appended to matmul.wgsl and matmul_vec4.wgsl, which declare
// `p: MatmulParams`, `c`, `z` and `fn bias_at(j) -> f32` (the bias lives in b, whose element
// type differs between the two files). Requires: activation_fns.wgsl.

const HAS_BIAS: u32 = 1u;
const WRITE_PRE: u32 = 2u;
const ACT_BACKWARD: u32 = 4u;

// Writes C(i, j) = epilogue(acc). Callers guarantee i < m and j < n.
fn store(i: u32, j: u32, acc: f32) {
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
    if (i >= p.m) {
        return;
    }
    for (var t = 0u; t < 4u; t = t + 1u) {
        if (j0 + t < p.n) {
            store(i, j0 + t, v[t]);
        }
    }
}
