// The texture matmul variants for devices with subgroups (wgpu's SUBGROUP feature, subgroups
// of exactly 8 invocations, as lavapipe's on 256-bit vectors): the products of matmul_texture.wgsl with a 16x4 block of C per
// invocation and each texel of A fetched once per subgroup instead of once per invocation.
//
// Why: on lavapipe a texel fetch is a call that loads each lane's texel and transposes them
// into registers; it took 63 % of mm_tex_atb's time on 1024^3 (perf, 2026-12-01), and A's
// fetches there load the same texel in all 8 lanes. Here the 8 invocations of a workgroup
// (one full subgroup, lanes 0-7: the host runs these kernels only where subgroups hold 8)
// share their block's rows of C: each fetches a different texel of A and subgroupBroadcast
// hands every lane each of them. Per 4 k, an AB invocation fetches 2 texels of A and 4 of B for its 256
// multiply-adds (matmul_texture.wgsl: 16 for 256).
//   mm_tex_ab_sg   C = A B; textures as for mm_tex_ab (A: texels k/4 x m, B: n/4 x k).
//                  Lane l fetches the texel of rows row0 + l and row0 + 8 + l.
//   mm_tex_atb_sg  C = A^T B; textures as for mm_tex_atb (A: m/4 x k, B: n/4 x k).
//                  Per 8 k, lane l fetches the 4 texels of A's row q + l (C's 16 rows);
//                  a k past the last whole 8 is read as mm_tex_atb reads it.
//   mm_tex_abt_sg  C = A B^T; as mm_tex_ab_sg, with B's texture as for mm_tex_abt.
// Workgroups are 8x1 invocations: 32 columns x 16 rows of C. Every accumulator adds its
// products one k at a time, in order, as every other variant does: the same bits. Written
// out by hand for the same reason as matmul_texture.wgsl. No invocation returns before the
// broadcasts (a lane past C's columns still fetches for the others); whole workgroups past C's
// rows return at once.
// Requires: matmul_texture_common.wgsl matmul_params.wgsl matmul_epilogue_vec4.wgsl activation_fns.wgsl

// Stores the 16x4 block at (row0, col0): acc[r] holds columns col0..col0+3 of row row0 + r.
// A plain product (no epilogue) whose block lies inside C stores its 16 vec4s directly: on
// lavapipe the loop of checked store_row4 calls below took a quarter of a 1024x1024x128 AtB (the
// wide model's weight gradient; 20 against 26.5 GFLOP/s, BENCHMARKS.md). No activation code
// is copied, so the kernel compiles no slower. (col0 < n holds the whole group: n % 4 == 0.)
fn store_column_block(row0: u32, col0: u32, acc: array<vec4<f32>, 16>) {
    if (p.flags == 0u && row0 + 16u <= p.m && col0 < p.n) {
        let rs = p.n / 4u;
        let base = (p.c_off + row0 * p.n + col0) / 4u;
        c[base + 0u * rs] = acc[0];
        c[base + 1u * rs] = acc[1];
        c[base + 2u * rs] = acc[2];
        c[base + 3u * rs] = acc[3];
        c[base + 4u * rs] = acc[4];
        c[base + 5u * rs] = acc[5];
        c[base + 6u * rs] = acc[6];
        c[base + 7u * rs] = acc[7];
        c[base + 8u * rs] = acc[8];
        c[base + 9u * rs] = acc[9];
        c[base + 10u * rs] = acc[10];
        c[base + 11u * rs] = acc[11];
        c[base + 12u * rs] = acc[12];
        c[base + 13u * rs] = acc[13];
        c[base + 14u * rs] = acc[14];
        c[base + 15u * rs] = acc[15];
        return;
    }
    var a = acc;
    let rows = min(16u, p.m - row0);
    for (var t = 0u; t < rows; t = t + 1u) {
        store_row4(row0 + t, col0, a[t]);
    }
}

@compute @workgroup_size(8, 1)
fn mm_tex_ab_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    tex_ab_sg_block(gid, wid, nwg, li, lane, false);
}

@compute @workgroup_size(8, 1)
fn mm_tex_abt_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    tex_ab_sg_block(gid, wid, nwg, li, lane, true);
}

// The 16x4 block of mm_tex_ab_sg and mm_tex_abt_sg; `bt` as for tex_ab_block in
// matmul_texture.wgsl (the texture holds B of C = A B^T as stored, n x k).
fn tex_ab_sg_block(gid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>, li: u32, lane: u32, bt: bool) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 8u, bt);
        return;
    }
    let row0 = wid.y * 16u;
    let col0 = gid.x * 4u;
    // Bounds guard: the workgroup's rows lie outside C (the same for all its invocations).
    if (row0 >= p.m) {
        return;
    }
    // Clamped rows and texel column: valid loads; results past m or n are not stored.
    let last_row = i32(p.m) - 1;
    let r_lo = min(i32(row0 + lane), last_row);
    let r_hi = min(i32(row0 + 8u + lane), last_row);
    let cx = min(i32(col0 / 4u), i32(p.n / 4u) - 1);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);
    for (var q = 0; q < i32(p.k / 4u); q = q + 1) {
        let mine0 = textureLoad(ta, vec2<i32>(q, r_lo), 0);
        let mine1 = textureLoad(ta, vec2<i32>(q, r_hi), 0);
        let a0 = subgroupBroadcast(mine0, 0u);
        let a1 = subgroupBroadcast(mine0, 1u);
        let a2 = subgroupBroadcast(mine0, 2u);
        let a3 = subgroupBroadcast(mine0, 3u);
        let a4 = subgroupBroadcast(mine0, 4u);
        let a5 = subgroupBroadcast(mine0, 5u);
        let a6 = subgroupBroadcast(mine0, 6u);
        let a7 = subgroupBroadcast(mine0, 7u);
        let a8 = subgroupBroadcast(mine1, 0u);
        let a9 = subgroupBroadcast(mine1, 1u);
        let a10 = subgroupBroadcast(mine1, 2u);
        let a11 = subgroupBroadcast(mine1, 3u);
        let a12 = subgroupBroadcast(mine1, 4u);
        let a13 = subgroupBroadcast(mine1, 5u);
        let a14 = subgroupBroadcast(mine1, 6u);
        let a15 = subgroupBroadcast(mine1, 7u);
        var b0: vec4<f32>;
        var b1: vec4<f32>;
        var b2: vec4<f32>;
        var b3: vec4<f32>;
        if (bt) {
            let rows = bt_rows(q, cx);
            b0 = rows[0];
            b1 = rows[1];
            b2 = rows[2];
            b3 = rows[3];
        } else {
            b0 = textureLoad(tb, vec2<i32>(cx, 4 * q + 0), 0);
            b1 = textureLoad(tb, vec2<i32>(cx, 4 * q + 1), 0);
            b2 = textureLoad(tb, vec2<i32>(cx, 4 * q + 2), 0);
            b3 = textureLoad(tb, vec2<i32>(cx, 4 * q + 3), 0);
        }
        acc0 = acc0 + a0.x * b0;
        acc1 = acc1 + a1.x * b0;
        acc2 = acc2 + a2.x * b0;
        acc3 = acc3 + a3.x * b0;
        acc4 = acc4 + a4.x * b0;
        acc5 = acc5 + a5.x * b0;
        acc6 = acc6 + a6.x * b0;
        acc7 = acc7 + a7.x * b0;
        acc8 = acc8 + a8.x * b0;
        acc9 = acc9 + a9.x * b0;
        acc10 = acc10 + a10.x * b0;
        acc11 = acc11 + a11.x * b0;
        acc12 = acc12 + a12.x * b0;
        acc13 = acc13 + a13.x * b0;
        acc14 = acc14 + a14.x * b0;
        acc15 = acc15 + a15.x * b0;
        acc0 = acc0 + a0.y * b1;
        acc1 = acc1 + a1.y * b1;
        acc2 = acc2 + a2.y * b1;
        acc3 = acc3 + a3.y * b1;
        acc4 = acc4 + a4.y * b1;
        acc5 = acc5 + a5.y * b1;
        acc6 = acc6 + a6.y * b1;
        acc7 = acc7 + a7.y * b1;
        acc8 = acc8 + a8.y * b1;
        acc9 = acc9 + a9.y * b1;
        acc10 = acc10 + a10.y * b1;
        acc11 = acc11 + a11.y * b1;
        acc12 = acc12 + a12.y * b1;
        acc13 = acc13 + a13.y * b1;
        acc14 = acc14 + a14.y * b1;
        acc15 = acc15 + a15.y * b1;
        acc0 = acc0 + a0.z * b2;
        acc1 = acc1 + a1.z * b2;
        acc2 = acc2 + a2.z * b2;
        acc3 = acc3 + a3.z * b2;
        acc4 = acc4 + a4.z * b2;
        acc5 = acc5 + a5.z * b2;
        acc6 = acc6 + a6.z * b2;
        acc7 = acc7 + a7.z * b2;
        acc8 = acc8 + a8.z * b2;
        acc9 = acc9 + a9.z * b2;
        acc10 = acc10 + a10.z * b2;
        acc11 = acc11 + a11.z * b2;
        acc12 = acc12 + a12.z * b2;
        acc13 = acc13 + a13.z * b2;
        acc14 = acc14 + a14.z * b2;
        acc15 = acc15 + a15.z * b2;
        acc0 = acc0 + a0.w * b3;
        acc1 = acc1 + a1.w * b3;
        acc2 = acc2 + a2.w * b3;
        acc3 = acc3 + a3.w * b3;
        acc4 = acc4 + a4.w * b3;
        acc5 = acc5 + a5.w * b3;
        acc6 = acc6 + a6.w * b3;
        acc7 = acc7 + a7.w * b3;
        acc8 = acc8 + a8.w * b3;
        acc9 = acc9 + a9.w * b3;
        acc10 = acc10 + a10.w * b3;
        acc11 = acc11 + a11.w * b3;
        acc12 = acc12 + a12.w * b3;
        acc13 = acc13 + a13.w * b3;
        acc14 = acc14 + a14.w * b3;
        acc15 = acc15 + a15.w * b3;
    }
    store_column_block(row0, col0, array<vec4<f32>, 16>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15));
}

@compute @workgroup_size(8, 1)
fn mm_tex_atb_sg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 8u, false);
        return;
    }
    let row0 = wid.y * 16u;
    let col0 = gid.x * 4u;
    // Bounds guard: the workgroup's rows lie outside C (the same for all its invocations).
    if (row0 >= p.m) {
        return;
    }
    // Clamped texel columns of A (rows of C) and of B: valid loads; results past m or n are
    // not stored.
    let last_a = i32(p.m / 4u) - 1;
    let at0 = min(i32(row0 / 4u), last_a);
    let at1 = min(i32(row0 / 4u) + 1, last_a);
    let at2 = min(i32(row0 / 4u) + 2, last_a);
    let at3 = min(i32(row0 / 4u) + 3, last_a);
    let cx = min(i32(col0 / 4u), i32(p.n / 4u) - 1);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);
    let whole = i32(p.k & ~7u);
    var q = 0;
    for (; q < whole; q = q + 8) {
        let m0 = textureLoad(ta, vec2<i32>(at0, q + i32(lane)), 0);
        let m1 = textureLoad(ta, vec2<i32>(at1, q + i32(lane)), 0);
        let m2 = textureLoad(ta, vec2<i32>(at2, q + i32(lane)), 0);
        let m3 = textureLoad(ta, vec2<i32>(at3, q + i32(lane)), 0);
        let a0_0 = subgroupBroadcast(m0, 0u);
        let a1_0 = subgroupBroadcast(m1, 0u);
        let a2_0 = subgroupBroadcast(m2, 0u);
        let a3_0 = subgroupBroadcast(m3, 0u);
        let b0 = textureLoad(tb, vec2<i32>(cx, q + 0), 0);
        acc0 = acc0 + a0_0.x * b0;
        acc1 = acc1 + a0_0.y * b0;
        acc2 = acc2 + a0_0.z * b0;
        acc3 = acc3 + a0_0.w * b0;
        acc4 = acc4 + a1_0.x * b0;
        acc5 = acc5 + a1_0.y * b0;
        acc6 = acc6 + a1_0.z * b0;
        acc7 = acc7 + a1_0.w * b0;
        acc8 = acc8 + a2_0.x * b0;
        acc9 = acc9 + a2_0.y * b0;
        acc10 = acc10 + a2_0.z * b0;
        acc11 = acc11 + a2_0.w * b0;
        acc12 = acc12 + a3_0.x * b0;
        acc13 = acc13 + a3_0.y * b0;
        acc14 = acc14 + a3_0.z * b0;
        acc15 = acc15 + a3_0.w * b0;
        let a0_1 = subgroupBroadcast(m0, 1u);
        let a1_1 = subgroupBroadcast(m1, 1u);
        let a2_1 = subgroupBroadcast(m2, 1u);
        let a3_1 = subgroupBroadcast(m3, 1u);
        let b1 = textureLoad(tb, vec2<i32>(cx, q + 1), 0);
        acc0 = acc0 + a0_1.x * b1;
        acc1 = acc1 + a0_1.y * b1;
        acc2 = acc2 + a0_1.z * b1;
        acc3 = acc3 + a0_1.w * b1;
        acc4 = acc4 + a1_1.x * b1;
        acc5 = acc5 + a1_1.y * b1;
        acc6 = acc6 + a1_1.z * b1;
        acc7 = acc7 + a1_1.w * b1;
        acc8 = acc8 + a2_1.x * b1;
        acc9 = acc9 + a2_1.y * b1;
        acc10 = acc10 + a2_1.z * b1;
        acc11 = acc11 + a2_1.w * b1;
        acc12 = acc12 + a3_1.x * b1;
        acc13 = acc13 + a3_1.y * b1;
        acc14 = acc14 + a3_1.z * b1;
        acc15 = acc15 + a3_1.w * b1;
        let a0_2 = subgroupBroadcast(m0, 2u);
        let a1_2 = subgroupBroadcast(m1, 2u);
        let a2_2 = subgroupBroadcast(m2, 2u);
        let a3_2 = subgroupBroadcast(m3, 2u);
        let b2 = textureLoad(tb, vec2<i32>(cx, q + 2), 0);
        acc0 = acc0 + a0_2.x * b2;
        acc1 = acc1 + a0_2.y * b2;
        acc2 = acc2 + a0_2.z * b2;
        acc3 = acc3 + a0_2.w * b2;
        acc4 = acc4 + a1_2.x * b2;
        acc5 = acc5 + a1_2.y * b2;
        acc6 = acc6 + a1_2.z * b2;
        acc7 = acc7 + a1_2.w * b2;
        acc8 = acc8 + a2_2.x * b2;
        acc9 = acc9 + a2_2.y * b2;
        acc10 = acc10 + a2_2.z * b2;
        acc11 = acc11 + a2_2.w * b2;
        acc12 = acc12 + a3_2.x * b2;
        acc13 = acc13 + a3_2.y * b2;
        acc14 = acc14 + a3_2.z * b2;
        acc15 = acc15 + a3_2.w * b2;
        let a0_3 = subgroupBroadcast(m0, 3u);
        let a1_3 = subgroupBroadcast(m1, 3u);
        let a2_3 = subgroupBroadcast(m2, 3u);
        let a3_3 = subgroupBroadcast(m3, 3u);
        let b3 = textureLoad(tb, vec2<i32>(cx, q + 3), 0);
        acc0 = acc0 + a0_3.x * b3;
        acc1 = acc1 + a0_3.y * b3;
        acc2 = acc2 + a0_3.z * b3;
        acc3 = acc3 + a0_3.w * b3;
        acc4 = acc4 + a1_3.x * b3;
        acc5 = acc5 + a1_3.y * b3;
        acc6 = acc6 + a1_3.z * b3;
        acc7 = acc7 + a1_3.w * b3;
        acc8 = acc8 + a2_3.x * b3;
        acc9 = acc9 + a2_3.y * b3;
        acc10 = acc10 + a2_3.z * b3;
        acc11 = acc11 + a2_3.w * b3;
        acc12 = acc12 + a3_3.x * b3;
        acc13 = acc13 + a3_3.y * b3;
        acc14 = acc14 + a3_3.z * b3;
        acc15 = acc15 + a3_3.w * b3;
        let a0_4 = subgroupBroadcast(m0, 4u);
        let a1_4 = subgroupBroadcast(m1, 4u);
        let a2_4 = subgroupBroadcast(m2, 4u);
        let a3_4 = subgroupBroadcast(m3, 4u);
        let b4 = textureLoad(tb, vec2<i32>(cx, q + 4), 0);
        acc0 = acc0 + a0_4.x * b4;
        acc1 = acc1 + a0_4.y * b4;
        acc2 = acc2 + a0_4.z * b4;
        acc3 = acc3 + a0_4.w * b4;
        acc4 = acc4 + a1_4.x * b4;
        acc5 = acc5 + a1_4.y * b4;
        acc6 = acc6 + a1_4.z * b4;
        acc7 = acc7 + a1_4.w * b4;
        acc8 = acc8 + a2_4.x * b4;
        acc9 = acc9 + a2_4.y * b4;
        acc10 = acc10 + a2_4.z * b4;
        acc11 = acc11 + a2_4.w * b4;
        acc12 = acc12 + a3_4.x * b4;
        acc13 = acc13 + a3_4.y * b4;
        acc14 = acc14 + a3_4.z * b4;
        acc15 = acc15 + a3_4.w * b4;
        let a0_5 = subgroupBroadcast(m0, 5u);
        let a1_5 = subgroupBroadcast(m1, 5u);
        let a2_5 = subgroupBroadcast(m2, 5u);
        let a3_5 = subgroupBroadcast(m3, 5u);
        let b5 = textureLoad(tb, vec2<i32>(cx, q + 5), 0);
        acc0 = acc0 + a0_5.x * b5;
        acc1 = acc1 + a0_5.y * b5;
        acc2 = acc2 + a0_5.z * b5;
        acc3 = acc3 + a0_5.w * b5;
        acc4 = acc4 + a1_5.x * b5;
        acc5 = acc5 + a1_5.y * b5;
        acc6 = acc6 + a1_5.z * b5;
        acc7 = acc7 + a1_5.w * b5;
        acc8 = acc8 + a2_5.x * b5;
        acc9 = acc9 + a2_5.y * b5;
        acc10 = acc10 + a2_5.z * b5;
        acc11 = acc11 + a2_5.w * b5;
        acc12 = acc12 + a3_5.x * b5;
        acc13 = acc13 + a3_5.y * b5;
        acc14 = acc14 + a3_5.z * b5;
        acc15 = acc15 + a3_5.w * b5;
        let a0_6 = subgroupBroadcast(m0, 6u);
        let a1_6 = subgroupBroadcast(m1, 6u);
        let a2_6 = subgroupBroadcast(m2, 6u);
        let a3_6 = subgroupBroadcast(m3, 6u);
        let b6 = textureLoad(tb, vec2<i32>(cx, q + 6), 0);
        acc0 = acc0 + a0_6.x * b6;
        acc1 = acc1 + a0_6.y * b6;
        acc2 = acc2 + a0_6.z * b6;
        acc3 = acc3 + a0_6.w * b6;
        acc4 = acc4 + a1_6.x * b6;
        acc5 = acc5 + a1_6.y * b6;
        acc6 = acc6 + a1_6.z * b6;
        acc7 = acc7 + a1_6.w * b6;
        acc8 = acc8 + a2_6.x * b6;
        acc9 = acc9 + a2_6.y * b6;
        acc10 = acc10 + a2_6.z * b6;
        acc11 = acc11 + a2_6.w * b6;
        acc12 = acc12 + a3_6.x * b6;
        acc13 = acc13 + a3_6.y * b6;
        acc14 = acc14 + a3_6.z * b6;
        acc15 = acc15 + a3_6.w * b6;
        let a0_7 = subgroupBroadcast(m0, 7u);
        let a1_7 = subgroupBroadcast(m1, 7u);
        let a2_7 = subgroupBroadcast(m2, 7u);
        let a3_7 = subgroupBroadcast(m3, 7u);
        let b7 = textureLoad(tb, vec2<i32>(cx, q + 7), 0);
        acc0 = acc0 + a0_7.x * b7;
        acc1 = acc1 + a0_7.y * b7;
        acc2 = acc2 + a0_7.z * b7;
        acc3 = acc3 + a0_7.w * b7;
        acc4 = acc4 + a1_7.x * b7;
        acc5 = acc5 + a1_7.y * b7;
        acc6 = acc6 + a1_7.z * b7;
        acc7 = acc7 + a1_7.w * b7;
        acc8 = acc8 + a2_7.x * b7;
        acc9 = acc9 + a2_7.y * b7;
        acc10 = acc10 + a2_7.z * b7;
        acc11 = acc11 + a2_7.w * b7;
        acc12 = acc12 + a3_7.x * b7;
        acc13 = acc13 + a3_7.y * b7;
        acc14 = acc14 + a3_7.z * b7;
        acc15 = acc15 + a3_7.w * b7;
    }
    for (; q < i32(p.k); q = q + 1) {
        let d0 = textureLoad(ta, vec2<i32>(at0, q), 0);
        let d1 = textureLoad(ta, vec2<i32>(at1, q), 0);
        let d2 = textureLoad(ta, vec2<i32>(at2, q), 0);
        let d3 = textureLoad(ta, vec2<i32>(at3, q), 0);
        let b = textureLoad(tb, vec2<i32>(cx, q), 0);
        acc0 = acc0 + d0.x * b;
        acc1 = acc1 + d0.y * b;
        acc2 = acc2 + d0.z * b;
        acc3 = acc3 + d0.w * b;
        acc4 = acc4 + d1.x * b;
        acc5 = acc5 + d1.y * b;
        acc6 = acc6 + d1.z * b;
        acc7 = acc7 + d1.w * b;
        acc8 = acc8 + d2.x * b;
        acc9 = acc9 + d2.y * b;
        acc10 = acc10 + d2.z * b;
        acc11 = acc11 + d2.w * b;
        acc12 = acc12 + d3.x * b;
        acc13 = acc13 + d3.y * b;
        acc14 = acc14 + d3.z * b;
        acc15 = acc15 + d3.w * b;
    }
    store_column_block(row0, col0, array<vec4<f32>, 16>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15));
}
