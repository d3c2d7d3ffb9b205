// Matrix product C = op(A) * op(B) with an optional fused epilogue, scalar-load variants.
//
// Shapes: C [m, n] row-major at c[c_off + i * n + j]. A(i, p) = a[a_off + i * a_rs + p * a_cs],
// B(p, j) = b[b_off + p * b_rs + j * b_cs]: the strides express the three forms training needs
// (AB, AtB, ABt; see src/ops.rs) without copies.
// Epilogue (flags): + bias b[bias_off + j]; store the pre-activation to z; then either apply
// the activation, or (ACT_BACKWARD) multiply by act'(z) read from z, which fuses an
// activation's backward into the product that computes its upstream gradient.
//
// Bindings: 0 params (uniform), 1 a (read), 2 b (read; also holds the bias), 3 c (read_write),
// 4 z (read_write: pre-activation out, or the saved pre-activation in for ACT_BACKWARD).
//
// Variants (entry points), chosen per adapter by src/gpu/kernels/autotune.rs:
//   mm_naive   one output per invocation                      workgroup 8x8
//   mm_tiled   16x16 shared-memory tiles (real GPUs like it)  workgroup 16x16
//   mm_tiled_k64  the same 16x16 outputs, k in slices of 64    workgroup 16x16
//   mm_tiled8_k64 8x8 outputs, k in slices of 64               workgroup 8x8
//   mm_rb4x4   4x4 register block per invocation              workgroup 8x8
//   mm_rb4x8   4x8 register block per invocation              workgroup 8x8
// Requires: matmul_params.wgsl matmul_epilogue.wgsl activation_fns.wgsl

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn a_at(i: u32, q: u32) -> f32 {
    return a[p.a_off + i * p.a_rs + q * p.a_cs];
}

fn b_at(q: u32, j: u32) -> f32 {
    return b[p.b_off + q * p.b_rs + j * p.b_cs];
}

fn bias_at(j: u32) -> f32 {
    return b[p.bias_off + j];
}

@compute @workgroup_size(8, 8)
fn mm_naive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 64u);
        return;
    }
    let i = gid.y;
    let j = gid.x;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.m || j >= p.n) {
        return;
    }
    var acc = 0.0;
    for (var q = 0u; q < p.k; q = q + 1u) {
        acc = acc + a_at(i, q) * b_at(q, j);
    }
    store(i, j, acc);
}

const TILE: u32 = 16u;
var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn mm_tiled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 256u);
        return;
    }
    let i = gid.y;
    let j = gid.x;
    var acc = 0.0;
    let tiles = (p.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t = t + 1u) {
        // Out-of-range elements load as 0 so partial tiles add nothing; no early return
        // before the barriers, every invocation must reach them.
        let qa = t * TILE + lid.x;
        let qb = t * TILE + lid.y;
        tile_a[lid.y][lid.x] = select(0.0, a_at(min(i, p.m - 1u), min(qa, p.k - 1u)), i < p.m && qa < p.k);
        tile_b[lid.y][lid.x] = select(0.0, b_at(min(qb, p.k - 1u), min(j, p.n - 1u)), qb < p.k && j < p.n);
        workgroupBarrier();
        for (var q = 0u; q < TILE; q = q + 1u) {
            acc = acc + tile_a[lid.y][q] * tile_b[q][lid.x];
        }
        workgroupBarrier();
    }
    // Bounds guard: only now, after the last barrier.
    if (i < p.m && j < p.n) {
        store(i, j, acc);
    }
}

// mm_tiled with k in slices of 64: each invocation stages 4 elements of A and 4 of B per
// slice, and the next slice's are loaded into registers before the current one is summed, so a
// GPU waits on memory 13 times for k = 784 instead of 49.
const SLICE: u32 = 64u;
var<workgroup> slab_a: array<array<f32, 64>, 16>;
var<workgroup> slab_b: array<array<f32, 16>, 64>;

// Element s of this invocation's share of slice t: A(i, t*64 + x + 16 s) and B(t*64 + y + 16 s, j),
// 0 outside the matrices so that partial slices add nothing.
fn slice_a(i: u32, t: u32, x: u32, s: u32) -> f32 {
    return slice_a_w(i, t, x, s, TILE);
}

fn slice_b(j: u32, t: u32, y: u32, s: u32) -> f32 {
    return slice_b_w(j, t, y, s, TILE);
}

// The same for a workgroup `w` invocations wide: element s is at k = t*64 + x + w s.
fn slice_a_w(i: u32, t: u32, x: u32, s: u32, w: u32) -> f32 {
    let q = t * SLICE + x + w * s;
    return select(0.0, a_at(min(i, p.m - 1u), min(q, p.k - 1u)), i < p.m && q < p.k);
}

fn slice_b_w(j: u32, t: u32, y: u32, s: u32, w: u32) -> f32 {
    let q = t * SLICE + y + w * s;
    return select(0.0, b_at(min(q, p.k - 1u), min(j, p.n - 1u)), q < p.k && j < p.n);
}

@compute @workgroup_size(16, 16)
fn mm_tiled_k64(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 256u);
        return;
    }
    let i = gid.y;
    let j = gid.x;
    // Row of A this invocation stages: the workgroup's row lid.y (its columns are lid.x + 16 s).
    let ia = gid.y;
    var acc = 0.0;
    let slices = (p.k + SLICE - 1u) / SLICE;
    var na = vec4<f32>(slice_a(ia, 0u, lid.x, 0u), slice_a(ia, 0u, lid.x, 1u), slice_a(ia, 0u, lid.x, 2u), slice_a(ia, 0u, lid.x, 3u));
    var nb = vec4<f32>(slice_b(j, 0u, lid.y, 0u), slice_b(j, 0u, lid.y, 1u), slice_b(j, 0u, lid.y, 2u), slice_b(j, 0u, lid.y, 3u));
    // No early return before the barriers: every invocation must reach them.
    for (var t = 0u; t < slices; t = t + 1u) {
        for (var s = 0u; s < 4u; s = s + 1u) {
            slab_a[lid.y][lid.x + TILE * s] = na[s];
            slab_b[lid.y + TILE * s][lid.x] = nb[s];
        }
        workgroupBarrier();
        // Prefetch the next slice while this one is summed (loads past the end give 0).
        let u = t + 1u;
        na = vec4<f32>(slice_a(ia, u, lid.x, 0u), slice_a(ia, u, lid.x, 1u), slice_a(ia, u, lid.x, 2u), slice_a(ia, u, lid.x, 3u));
        nb = vec4<f32>(slice_b(j, u, lid.y, 0u), slice_b(j, u, lid.y, 1u), slice_b(j, u, lid.y, 2u), slice_b(j, u, lid.y, 3u));
        // In k order, one product at a time, as every variant adds.
        for (var q = 0u; q < SLICE; q = q + 1u) {
            acc = acc + slab_a[lid.y][q] * slab_b[q][lid.x];
        }
        workgroupBarrier();
    }
    // Bounds guard: only now, after the last barrier.
    if (i < p.m && j < p.n) {
        store(i, j, acc);
    }
}

// mm_tiled_k64 with 8x8 outputs per workgroup: four times the workgroups for the same product,
// so a 128x64 output fills 128 of a big GPU's multiprocessors instead of 32, each staging an
// eighth of the shared memory traffic.
var<workgroup> small_a: array<array<f32, 64>, 8>;
var<workgroup> small_b: array<array<f32, 8>, 64>;

fn stage8_a(i: u32, t: u32, x: u32, half: u32) -> vec4<f32> {
    let s = 4u * half;
    return vec4<f32>(slice_a_w(i, t, x, s, 8u), slice_a_w(i, t, x, s + 1u, 8u), slice_a_w(i, t, x, s + 2u, 8u), slice_a_w(i, t, x, s + 3u, 8u));
}

fn stage8_b(j: u32, t: u32, y: u32, half: u32) -> vec4<f32> {
    let s = 4u * half;
    return vec4<f32>(slice_b_w(j, t, y, s, 8u), slice_b_w(j, t, y, s + 1u, 8u), slice_b_w(j, t, y, s + 2u, 8u), slice_b_w(j, t, y, s + 3u, 8u));
}

@compute @workgroup_size(8, 8)
fn mm_tiled8_k64(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // The rows of workgroups past the product's, launched only with col_sums, sum B's columns.
    if (p.col_sums != 0u && wid.y >= p.sums_row) {
        col_sums_slice(wid, nwg, li, 64u);
        return;
    }
    let i = gid.y;
    let j = gid.x;
    var acc = 0.0;
    let slices = (p.k + SLICE - 1u) / SLICE;
    var na0 = stage8_a(i, 0u, lid.x, 0u);
    var na1 = stage8_a(i, 0u, lid.x, 1u);
    var nb0 = stage8_b(j, 0u, lid.y, 0u);
    var nb1 = stage8_b(j, 0u, lid.y, 1u);
    // No early return before the barriers: every invocation must reach them.
    for (var t = 0u; t < slices; t = t + 1u) {
        for (var s = 0u; s < 4u; s = s + 1u) {
            small_a[lid.y][lid.x + 8u * s] = na0[s];
            small_a[lid.y][lid.x + 8u * (s + 4u)] = na1[s];
            small_b[lid.y + 8u * s][lid.x] = nb0[s];
            small_b[lid.y + 8u * (s + 4u)][lid.x] = nb1[s];
        }
        workgroupBarrier();
        let u = t + 1u;
        na0 = stage8_a(i, u, lid.x, 0u);
        na1 = stage8_a(i, u, lid.x, 1u);
        nb0 = stage8_b(j, u, lid.y, 0u);
        nb1 = stage8_b(j, u, lid.y, 1u);
        // In k order, one product at a time, as every variant adds.
        for (var q = 0u; q < SLICE; q = q + 1u) {
            acc = acc + small_a[lid.y][q] * small_b[q][lid.x];
        }
        workgroupBarrier();
    }
    // Bounds guard: only now, after the last barrier.
    if (i < p.m && j < p.n) {
        store(i, j, acc);
    }
}

@compute @workgroup_size(8, 8)
fn mm_rb4x4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
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
    // Loads use clamped indices (always valid memory, no branch in the inner loop); the
    // extra rows and columns are computed and then not stored.
    let lr = p.m - 1u;
    let lc = p.n - 1u;
    let ra = vec4<u32>(min(row0, lr), min(row0 + 1u, lr), min(row0 + 2u, lr), min(row0 + 3u, lr)) * p.a_rs + p.a_off;
    let cb = vec4<u32>(min(col0, lc), min(col0 + 1u, lc), min(col0 + 2u, lc), min(col0 + 3u, lc)) * p.b_cs + p.b_off;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q = 0u; q < p.k; q = q + 1u) {
        let qa = q * p.a_cs;
        let qb = q * p.b_rs;
        let bv = vec4<f32>(b[cb.x + qb], b[cb.y + qb], b[cb.z + qb], b[cb.w + qb]);
        acc0 = acc0 + a[ra.x + qa] * bv;
        acc1 = acc1 + a[ra.y + qa] * bv;
        acc2 = acc2 + a[ra.z + qa] * bv;
        acc3 = acc3 + a[ra.w + qa] * bv;
    }
    store_row4(row0, col0, acc0);
    store_row4(row0 + 1u, col0, acc1);
    store_row4(row0 + 2u, col0, acc2);
    store_row4(row0 + 3u, col0, acc3);
}

@compute @workgroup_size(8, 8)
fn mm_rb4x8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
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
    // Clamped loads as in mm_rb4x4.
    let lr = p.m - 1u;
    let lc = p.n - 1u;
    let ra = vec4<u32>(min(row0, lr), min(row0 + 1u, lr), min(row0 + 2u, lr), min(row0 + 3u, lr)) * p.a_rs + p.a_off;
    let cl = vec4<u32>(min(col0, lc), min(col0 + 1u, lc), min(col0 + 2u, lc), min(col0 + 3u, lc)) * p.b_cs + p.b_off;
    let ch = vec4<u32>(min(col0 + 4u, lc), min(col0 + 5u, lc), min(col0 + 6u, lc), min(col0 + 7u, lc)) * p.b_cs + p.b_off;
    var acc0l = vec4<f32>(0.0);
    var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0);
    var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0);
    var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0);
    var acc3h = vec4<f32>(0.0);
    for (var q = 0u; q < p.k; q = q + 1u) {
        let qa = q * p.a_cs;
        let qb = q * p.b_rs;
        let bl = vec4<f32>(b[cl.x + qb], b[cl.y + qb], b[cl.z + qb], b[cl.w + qb]);
        let bh = vec4<f32>(b[ch.x + qb], b[ch.y + qb], b[ch.z + qb], b[ch.w + qb]);
        let a0 = a[ra.x + qa];
        let a1 = a[ra.y + qa];
        let a2 = a[ra.z + qa];
        let a3 = a[ra.w + qa];
        acc0l = acc0l + a0 * bl;
        acc0h = acc0h + a0 * bh;
        acc1l = acc1l + a1 * bl;
        acc1h = acc1h + a1 * bh;
        acc2l = acc2l + a2 * bl;
        acc2h = acc2h + a2 * bh;
        acc3l = acc3l + a3 * bl;
        acc3h = acc3h + a3 * bh;
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
