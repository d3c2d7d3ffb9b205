// Matrix product C = op(A) * op(B) with A and B read from rgba32float textures: the variants
// that run best on lavapipe (Mesa's CPU Vulkan driver). There, every storage-buffer load is a
// branchy per-lane scalar loop while a texel fetch is one vectorized gather, so the same 8x8
// register block runs 2-3x faster from textures (measured: 128x64x784 AB 1.64 ms from vec4
// buffers, 0.49-0.66 ms from textures). src/gpu/kernels/matmul_texture.rs packs each operand into
// a texture (pack_texture.wgsl) right before the product, inside the same recorded dispatch.
//
// Textures hold a row-major matrix as it is stored, 4 floats per texel: texel (x, y) is
// elements 4x..4x+3 of row y.
//   mm_tex_ab   C = A B;   A stored m x k (texels k/4 x m), B stored k x n (n/4 x k)
//   mm_tex_atb  C = A^T B; A stored k x m (texels m/4 x k), B stored k x n (n/4 x k)
//   mm_tex_abt  C = A B^T; A as for mm_tex_ab, B stored n x k (texels k/4 x n): the A B kernel
//               with B's 4x4 blocks of texels read transposed (tex_ab_block, bt = true)
// Each invocation computes an 8x8 block of C; workgroups are 8x2 invocations (64x16 outputs
// of C: small enough that a 128x64 product still makes 8 workgroups for the CPU's threads).
// Every accumulator adds its products one k at a time, in order, exactly as the buffer
// variants do, so all variants give identical bits. Unrolled by hand: the driver's compiler
// does not unroll loops or keep arrays in registers.
// Devices whose subgroups hold exactly 8 invocations can run the variants of
// matmul_texture_sg.wgsl instead: the same products with fewer fetches. lavapipe on 256-bit
// vectors does (its shipped choices, src/gpu/kernels/shipped.rs); elsewhere the tuner times them.
// Requires: matmul_texture_common.wgsl matmul_params.wgsl matmul_epilogue_vec4.wgsl activation_fns.wgsl

@compute @workgroup_size(8, 2)
fn mm_tex_ab(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    tex_ab_block(gid, wid, nwg, li, false);
}

@compute @workgroup_size(8, 2)
fn mm_tex_abt(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    tex_ab_block(gid, wid, nwg, li, true);
}

// The 8x8 block of mm_tex_ab and mm_tex_abt. `bt`, a constant in each entry point (the
// compiler folds the branch): the texture holds B of C = A B^T as stored, and per 4 k each
// group of 4 columns of C takes B^T's rows from bt_rows, through b_rows
// (matmul_texture_common.wgsl).
fn tex_ab_block(gid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>, li: u32, bt: bool) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 16u, bt);
        return;
    }
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    // Bounds guard: the whole block lies outside C.
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    // Clamped rows and texel columns: valid loads; results past m or n are not stored.
    let last_row = i32(p.m) - 1;
    let last_texel = i32(p.n / 4u) - 1;
    let r = i32(row0);
    let r0 = min(r + 0, last_row);
    let r1 = min(r + 1, last_row);
    let r2 = min(r + 2, last_row);
    let r3 = min(r + 3, last_row);
    let r4 = min(r + 4, last_row);
    let r5 = min(r + 5, last_row);
    let r6 = min(r + 6, last_row);
    let r7 = min(r + 7, last_row);
    let cl = min(i32(col0 / 4u), last_texel);
    let ch = min(i32(col0 / 4u) + 1, last_texel);
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    var acc4l = vec4<f32>(0.0);
    var acc4h = vec4<f32>(0.0);
    var acc5l = vec4<f32>(0.0);
    var acc5h = vec4<f32>(0.0);
    var acc6l = vec4<f32>(0.0);
    var acc6h = vec4<f32>(0.0);
    var acc7l = vec4<f32>(0.0);
    var acc7h = vec4<f32>(0.0);
    for (var q = 0; q < i32(p.k / 4u); q = q + 1) {
        let a0 = textureLoad(ta, vec2<i32>(q, r0), 0);
        let a1 = textureLoad(ta, vec2<i32>(q, r1), 0);
        let a2 = textureLoad(ta, vec2<i32>(q, r2), 0);
        let a3 = textureLoad(ta, vec2<i32>(q, r3), 0);
        let a4 = textureLoad(ta, vec2<i32>(q, r4), 0);
        let a5 = textureLoad(ta, vec2<i32>(q, r5), 0);
        let a6 = textureLoad(ta, vec2<i32>(q, r6), 0);
        let a7 = textureLoad(ta, vec2<i32>(q, r7), 0);
        let lo = b_rows(q, cl, bt);
        let hi = b_rows(q, ch, bt);
        let bl0 = lo[0];
        let bh0 = hi[0];
        let bl1 = lo[1];
        let bh1 = hi[1];
        let bl2 = lo[2];
        let bh2 = hi[2];
        let bl3 = lo[3];
        let bh3 = hi[3];
        acc0l = acc0l + a0.x * bl0;
        acc0h = acc0h + a0.x * bh0;
        acc1l = acc1l + a1.x * bl0;
        acc1h = acc1h + a1.x * bh0;
        acc2l = acc2l + a2.x * bl0;
        acc2h = acc2h + a2.x * bh0;
        acc3l = acc3l + a3.x * bl0;
        acc3h = acc3h + a3.x * bh0;
        acc4l = acc4l + a4.x * bl0;
        acc4h = acc4h + a4.x * bh0;
        acc5l = acc5l + a5.x * bl0;
        acc5h = acc5h + a5.x * bh0;
        acc6l = acc6l + a6.x * bl0;
        acc6h = acc6h + a6.x * bh0;
        acc7l = acc7l + a7.x * bl0;
        acc7h = acc7h + a7.x * bh0;
        acc0l = acc0l + a0.y * bl1;
        acc0h = acc0h + a0.y * bh1;
        acc1l = acc1l + a1.y * bl1;
        acc1h = acc1h + a1.y * bh1;
        acc2l = acc2l + a2.y * bl1;
        acc2h = acc2h + a2.y * bh1;
        acc3l = acc3l + a3.y * bl1;
        acc3h = acc3h + a3.y * bh1;
        acc4l = acc4l + a4.y * bl1;
        acc4h = acc4h + a4.y * bh1;
        acc5l = acc5l + a5.y * bl1;
        acc5h = acc5h + a5.y * bh1;
        acc6l = acc6l + a6.y * bl1;
        acc6h = acc6h + a6.y * bh1;
        acc7l = acc7l + a7.y * bl1;
        acc7h = acc7h + a7.y * bh1;
        acc0l = acc0l + a0.z * bl2;
        acc0h = acc0h + a0.z * bh2;
        acc1l = acc1l + a1.z * bl2;
        acc1h = acc1h + a1.z * bh2;
        acc2l = acc2l + a2.z * bl2;
        acc2h = acc2h + a2.z * bh2;
        acc3l = acc3l + a3.z * bl2;
        acc3h = acc3h + a3.z * bh2;
        acc4l = acc4l + a4.z * bl2;
        acc4h = acc4h + a4.z * bh2;
        acc5l = acc5l + a5.z * bl2;
        acc5h = acc5h + a5.z * bh2;
        acc6l = acc6l + a6.z * bl2;
        acc6h = acc6h + a6.z * bh2;
        acc7l = acc7l + a7.z * bl2;
        acc7h = acc7h + a7.z * bh2;
        acc0l = acc0l + a0.w * bl3;
        acc0h = acc0h + a0.w * bh3;
        acc1l = acc1l + a1.w * bl3;
        acc1h = acc1h + a1.w * bh3;
        acc2l = acc2l + a2.w * bl3;
        acc2h = acc2h + a2.w * bh3;
        acc3l = acc3l + a3.w * bl3;
        acc3h = acc3h + a3.w * bh3;
        acc4l = acc4l + a4.w * bl3;
        acc4h = acc4h + a4.w * bh3;
        acc5l = acc5l + a5.w * bl3;
        acc5h = acc5h + a5.w * bh3;
        acc6l = acc6l + a6.w * bl3;
        acc6h = acc6h + a6.w * bh3;
        acc7l = acc7l + a7.w * bl3;
        acc7h = acc7h + a7.w * bh3;
    }
    store_block(row0, col0, array<vec4<f32>, 16>(acc0l, acc0h, acc1l, acc1h, acc2l, acc2h, acc3l, acc3h,
                                                 acc4l, acc4h, acc5l, acc5h, acc6l, acc6h, acc7l, acc7h));
}

@compute @workgroup_size(8, 2)
fn mm_tex_atb(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 16u, false);
        return;
    }
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    // Bounds guard: the whole block lies outside C.
    if (row0 >= p.m || col0 >= p.n) {
        return;
    }
    // Clamped texel columns of A (rows of C) and of B: valid loads; results past m or n are
    // not stored.
    let last_a = i32(p.m / 4u) - 1;
    let last_b = i32(p.n / 4u) - 1;
    let al = min(i32(row0 / 4u), last_a);
    let ah = min(i32(row0 / 4u) + 1, last_a);
    let cl = min(i32(col0 / 4u), last_b);
    let ch = min(i32(col0 / 4u) + 1, last_b);
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    var acc4l = vec4<f32>(0.0);
    var acc4h = vec4<f32>(0.0);
    var acc5l = vec4<f32>(0.0);
    var acc5h = vec4<f32>(0.0);
    var acc6l = vec4<f32>(0.0);
    var acc6h = vec4<f32>(0.0);
    var acc7l = vec4<f32>(0.0);
    var acc7h = vec4<f32>(0.0);
    for (var q = 0; q < i32(p.k); q = q + 1) {
        let av = textureLoad(ta, vec2<i32>(al, q), 0);
        let aw = textureLoad(ta, vec2<i32>(ah, q), 0);
        let bl = textureLoad(tb, vec2<i32>(cl, q), 0);
        let bh = textureLoad(tb, vec2<i32>(ch, q), 0);
        acc0l = acc0l + av.x * bl;
        acc0h = acc0h + av.x * bh;
        acc1l = acc1l + av.y * bl;
        acc1h = acc1h + av.y * bh;
        acc2l = acc2l + av.z * bl;
        acc2h = acc2h + av.z * bh;
        acc3l = acc3l + av.w * bl;
        acc3h = acc3h + av.w * bh;
        acc4l = acc4l + aw.x * bl;
        acc4h = acc4h + aw.x * bh;
        acc5l = acc5l + aw.y * bl;
        acc5h = acc5h + aw.y * bh;
        acc6l = acc6l + aw.z * bl;
        acc6h = acc6h + aw.z * bh;
        acc7l = acc7l + aw.w * bl;
        acc7h = acc7h + aw.w * bh;
    }
    store_block(row0, col0, array<vec4<f32>, 16>(acc0l, acc0h, acc1l, acc1h, acc2l, acc2h, acc3l, acc3h,
                                                 acc4l, acc4h, acc5l, acc5h, acc6l, acc6h, acc7l, acc7h));
}
