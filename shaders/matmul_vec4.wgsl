// Matrix product C = op(A) * op(B) with vec4<f32> loads: the register-blocked variants that run
// well on CPU-backed adapters (lavapipe) and on GPUs alike. Same params, strides, epilogue and
// bindings as matmul.wgsl, but a and b are read as vec4 arrays, so each entry point needs its
// contiguous dimension to be a multiple of 4 and its offsets 16-byte aligned (the host checks
// that before choosing it; src/kernels/matmul.rs `Variant::supports`).
//
//   mm_v4_ab    4x8 block; A contiguous along k, B contiguous along n; k % 4 == 0   (AB)
//   mm_v4_atb   4x8 block; A contiguous along m, B contiguous along n; m % 4 == 0   (AtB)
//   mm_v4_abt   4x4 block of dot products; A and B contiguous along k; k % 4 == 0  (ABt)
// All workgroups are 8x8 invocations.
// Requires: matmul_epilogue.wgsl activation_fns.wgsl

struct MatmulParams {
    m: u32, n: u32, k: u32, flags: u32,
    a_off: u32, a_rs: u32, a_cs: u32, b_off: u32,
    b_rs: u32, b_cs: u32, c_off: u32, bias_off: u32,
    z_off: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;

fn bias_at(j: u32) -> f32 {
    let e = p.bias_off + j;
    return b[e / 4u][e % 4u];
}

@compute @workgroup_size(8, 8)
fn mm_v4_ab(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 8u;
    // Bounds guard: the whole block lies outside C.
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    // Clamped rows and vec4 columns: valid loads, results past m or n are not stored.
    let lr = p.m - 1u;
    let last_v = p.n / 4u - 1u;
    let r0 = (p.a_off + min(row0, lr) * p.a_rs) / 4u;
    let r1 = (p.a_off + min(row0 + 1u, lr) * p.a_rs) / 4u;
    let r2 = (p.a_off + min(row0 + 2u, lr) * p.a_rs) / 4u;
    let r3 = (p.a_off + min(row0 + 3u, lr) * p.a_rs) / 4u;
    let cl = p.b_off / 4u + min(col0 / 4u, last_v);
    let ch = p.b_off / 4u + min(col0 / 4u + 1u, last_v);
    let brs = p.b_rs / 4u;
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        let a0 = a[r0 + q];
        let a1 = a[r1 + q];
        let a2 = a[r2 + q];
        let a3 = a[r3 + q];
        // Unrolled by hand: a dynamic component index (a0[t]) in a loop compiles to a
        // select chain on some drivers, which halves the speed on lavapipe.
        let b0 = q * 4u * brs;
        let bl0 = b[cl + b0];
        let bh0 = b[ch + b0];
        let bl1 = b[cl + b0 + brs];
        let bh1 = b[ch + b0 + brs];
        let bl2 = b[cl + b0 + 2u * brs];
        let bh2 = b[ch + b0 + 2u * brs];
        let bl3 = b[cl + b0 + 3u * brs];
        let bh3 = b[ch + b0 + 3u * brs];
        acc0l += a0.x * bl0 + a0.y * bl1 + a0.z * bl2 + a0.w * bl3;
        acc0h += a0.x * bh0 + a0.y * bh1 + a0.z * bh2 + a0.w * bh3;
        acc1l += a1.x * bl0 + a1.y * bl1 + a1.z * bl2 + a1.w * bl3;
        acc1h += a1.x * bh0 + a1.y * bh1 + a1.z * bh2 + a1.w * bh3;
        acc2l += a2.x * bl0 + a2.y * bl1 + a2.z * bl2 + a2.w * bl3;
        acc2h += a2.x * bh0 + a2.y * bh1 + a2.z * bh2 + a2.w * bh3;
        acc3l += a3.x * bl0 + a3.y * bl1 + a3.z * bl2 + a3.w * bl3;
        acc3h += a3.x * bh0 + a3.y * bh1 + a3.z * bh2 + a3.w * bh3;
    }
    store_row4(row0, col0, acc0l);
    store_row4(row0, col0 + 4u, acc0h);
    store_row4(row0 + 1u, col0, acc1l);
    store_row4(row0 + 1u, col0 + 4u, acc1h);
    store_row4(row0 + 2u, col0, acc2l);
    store_row4(row0 + 2u, col0 + 4u, acc2h);
    store_row4(row0 + 3u, col0, acc3l);
    store_row4(row0 + 3u, col0 + 4u, acc3h);
}

@compute @workgroup_size(8, 8)
fn mm_v4_atb(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 8u;
    // Bounds guard: the whole block lies outside C.
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    let last_v = p.n / 4u - 1u;
    // A(i..i+4, q) is one vec4 because A is contiguous along m; m % 4 == 0 keeps it in range.
    let ra = (p.a_off + row0) / 4u;
    let acs = p.a_cs / 4u;
    let cl = p.b_off / 4u + min(col0 / 4u, last_v);
    let ch = p.b_off / 4u + min(col0 / 4u + 1u, last_v);
    let brs = p.b_rs / 4u;
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    for (var q = 0u; q < p.k; q = q + 1u) {
        let av = a[ra + q * acs];
        let bl = b[cl + q * brs];
        let bh = b[ch + q * brs];
        acc0l = acc0l + av.x * bl;
        acc0h = acc0h + av.x * bh;
        acc1l = acc1l + av.y * bl;
        acc1h = acc1h + av.y * bh;
        acc2l = acc2l + av.z * bl;
        acc2h = acc2h + av.z * bh;
        acc3l = acc3l + av.w * bl;
        acc3h = acc3h + av.w * bh;
    }
    store_row4(row0, col0, acc0l);
    store_row4(row0, col0 + 4u, acc0h);
    store_row4(row0 + 1u, col0, acc1l);
    store_row4(row0 + 1u, col0 + 4u, acc1h);
    store_row4(row0 + 2u, col0, acc2l);
    store_row4(row0 + 2u, col0 + 4u, acc2h);
    store_row4(row0 + 3u, col0, acc3l);
    store_row4(row0 + 3u, col0 + 4u, acc3h);
}

@compute @workgroup_size(8, 8)
fn mm_v4_abt(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    // Bounds guard: the whole block lies outside C.
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    // Clamped rows of A and rows of B (= columns of C): valid loads, extras not stored.
    let lr = p.m - 1u;
    let lc = p.n - 1u;
    let r0 = (p.a_off + min(row0, lr) * p.a_rs) / 4u;
    let r1 = (p.a_off + min(row0 + 1u, lr) * p.a_rs) / 4u;
    let r2 = (p.a_off + min(row0 + 2u, lr) * p.a_rs) / 4u;
    let r3 = (p.a_off + min(row0 + 3u, lr) * p.a_rs) / 4u;
    let c0 = (p.b_off + min(col0, lc) * p.b_cs) / 4u;
    let c1 = (p.b_off + min(col0 + 1u, lc) * p.b_cs) / 4u;
    let c2 = (p.b_off + min(col0 + 2u, lc) * p.b_cs) / 4u;
    let c3 = (p.b_off + min(col0 + 3u, lc) * p.b_cs) / 4u;
    // Accumulate 4-wide partial products per output and reduce once at the end.
    var s00 = vec4<f32>(0.0); var s01 = vec4<f32>(0.0); var s02 = vec4<f32>(0.0); var s03 = vec4<f32>(0.0);
    var s10 = vec4<f32>(0.0); var s11 = vec4<f32>(0.0); var s12 = vec4<f32>(0.0); var s13 = vec4<f32>(0.0);
    var s20 = vec4<f32>(0.0); var s21 = vec4<f32>(0.0); var s22 = vec4<f32>(0.0); var s23 = vec4<f32>(0.0);
    var s30 = vec4<f32>(0.0); var s31 = vec4<f32>(0.0); var s32 = vec4<f32>(0.0); var s33 = vec4<f32>(0.0);
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        let a0 = a[r0 + q];
        let a1 = a[r1 + q];
        let a2 = a[r2 + q];
        let a3 = a[r3 + q];
        let b0 = b[c0 + q];
        let b1 = b[c1 + q];
        let b2 = b[c2 + q];
        let b3 = b[c3 + q];
        s00 += a0 * b0; s01 += a0 * b1; s02 += a0 * b2; s03 += a0 * b3;
        s10 += a1 * b0; s11 += a1 * b1; s12 += a1 * b2; s13 += a1 * b3;
        s20 += a2 * b0; s21 += a2 * b1; s22 += a2 * b2; s23 += a2 * b3;
        s30 += a3 * b0; s31 += a3 * b1; s32 += a3 * b2; s33 += a3 * b3;
    }
    let one = vec4<f32>(1.0);
    store_row4(row0, col0, vec4<f32>(dot(s00, one), dot(s01, one), dot(s02, one), dot(s03, one)));
    store_row4(row0 + 1u, col0, vec4<f32>(dot(s10, one), dot(s11, one), dot(s12, one), dot(s13, one)));
    store_row4(row0 + 2u, col0, vec4<f32>(dot(s20, one), dot(s21, one), dot(s22, one), dot(s23, one)));
    store_row4(row0 + 3u, col0, vec4<f32>(dot(s30, one), dot(s31, one), dot(s32, one), dot(s33, one)));
}
