// Matrix product C = op(A) * op(B) with vec4<f32> loads: the register-blocked variants that run
// well on CPU-backed adapters (lavapipe) and on GPUs alike. Same params, strides, epilogue and
// bindings as matmul.wgsl, but a and b are read as vec4 arrays, so each entry point needs its
// contiguous dimension to be a multiple of 4 and its offsets 16-byte aligned (the host checks
// that before choosing it; src/gpu/kernels/matmul_variant.rs `Variant::supports`).
//
//   mm_v4_ab    4x8 block; A contiguous along k, B contiguous along n; k % 4 == 0   (AB)
//   mm_v4_atb   4x8 block; A contiguous along m, B contiguous along n; m % 4 == 0   (AtB)
//   mm_v4_abt   4x4 block; A and B contiguous along k, B tiles transposed in registers; k % 4 == 0  (ABt)
// All workgroups are 8x8 invocations.
// Requires: matmul_params.wgsl matmul_epilogue.wgsl activation_fns.wgsl

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

fn bias_at(j: u32) -> f32 {
    let e = p.bias_off + j;
    return b[e / 4u][e % 4u];
}

// B(q, j) as one float (the column sums read it so; the products read vec4s).
fn b_at(q: u32, j: u32) -> f32 {
    let e = p.b_off + q * p.b_rs + j * p.b_cs;
    return b[e / 4u][e % 4u];
}

@compute @workgroup_size(8, 8)
fn mm_v4_ab(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 64u);
        return;
    }
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
        // select chain on some drivers. Each accumulator adds its products one k at a
        // time, in order, as every other variant does: all variants give identical bits,
        // so the autotuner's choice never changes a result.
        let b0 = q * 4u * brs;
        let bl0 = b[cl + b0];
        let bh0 = b[ch + b0];
        let bl1 = b[cl + b0 + brs];
        let bh1 = b[ch + b0 + brs];
        let bl2 = b[cl + b0 + 2u * brs];
        let bh2 = b[ch + b0 + 2u * brs];
        let bl3 = b[cl + b0 + 3u * brs];
        let bh3 = b[ch + b0 + 3u * brs];
        acc0l = acc0l + a0.x * bl0;
        acc0h = acc0h + a0.x * bh0;
        acc1l = acc1l + a1.x * bl0;
        acc1h = acc1h + a1.x * bh0;
        acc2l = acc2l + a2.x * bl0;
        acc2h = acc2h + a2.x * bh0;
        acc3l = acc3l + a3.x * bl0;
        acc3h = acc3h + a3.x * bh0;
        acc0l = acc0l + a0.y * bl1;
        acc0h = acc0h + a0.y * bh1;
        acc1l = acc1l + a1.y * bl1;
        acc1h = acc1h + a1.y * bh1;
        acc2l = acc2l + a2.y * bl1;
        acc2h = acc2h + a2.y * bh1;
        acc3l = acc3l + a3.y * bl1;
        acc3h = acc3h + a3.y * bh1;
        acc0l = acc0l + a0.z * bl2;
        acc0h = acc0h + a0.z * bh2;
        acc1l = acc1l + a1.z * bl2;
        acc1h = acc1h + a1.z * bh2;
        acc2l = acc2l + a2.z * bl2;
        acc2h = acc2h + a2.z * bh2;
        acc3l = acc3l + a3.z * bl2;
        acc3h = acc3h + a3.z * bh2;
        acc0l = acc0l + a0.w * bl3;
        acc0h = acc0h + a0.w * bh3;
        acc1l = acc1l + a1.w * bl3;
        acc1h = acc1h + a1.w * bh3;
        acc2l = acc2l + a2.w * bl3;
        acc2h = acc2h + a2.w * bh3;
        acc3l = acc3l + a3.w * bl3;
        acc3h = acc3h + a3.w * bh3;
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
fn mm_v4_atb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 64u);
        return;
    }
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
fn mm_v4_abt(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 64u);
        return;
    }
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
    // One accumulator per output (a vec4 per row of the block), adding its products one
    // k at a time in order, so the bits match every other variant.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q = 0u; q < p.k / 4u; q = q + 1u) {
        let a0 = a[r0 + q];
        let a1 = a[r1 + q];
        let a2 = a[r2 + q];
        let a3 = a[r3 + q];
        // Column j of the block reads row j of B; transpose the 4x4 tile so that bt.x holds
        // B(q*4 + 0, col0 .. col0 + 4), and so on.
        let bt = transpose(mat4x4<f32>(b[c0 + q], b[c1 + q], b[c2 + q], b[c3 + q]));
        acc0 = acc0 + a0.x * bt[0];
        acc1 = acc1 + a1.x * bt[0];
        acc2 = acc2 + a2.x * bt[0];
        acc3 = acc3 + a3.x * bt[0];
        acc0 = acc0 + a0.y * bt[1];
        acc1 = acc1 + a1.y * bt[1];
        acc2 = acc2 + a2.y * bt[1];
        acc3 = acc3 + a3.y * bt[1];
        acc0 = acc0 + a0.z * bt[2];
        acc1 = acc1 + a1.z * bt[2];
        acc2 = acc2 + a2.z * bt[2];
        acc3 = acc3 + a3.z * bt[2];
        acc0 = acc0 + a0.w * bt[3];
        acc1 = acc1 + a1.w * bt[3];
        acc2 = acc2 + a2.w * bt[3];
        acc3 = acc3 + a3.w * bt[3];
    }
    store_row4(row0, col0, acc0);
    store_row4(row0 + 1u, col0, acc1);
    store_row4(row0 + 2u, col0, acc2);
    store_row4(row0 + 3u, col0, acc3);
}
