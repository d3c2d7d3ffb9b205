// Reductions and element-wise helpers for gradients.
//
//   column_sums: out[out_off + j] = sum_i x[in_off + i * cols + j]    (bias gradients)
//                rows summed in order, one invocation per column.
//   column_sums_batched: the same sums, in the same order, with loads issued eight rows
//                ahead (for GPUs; CPU drivers run the plain loop 4-5x faster).
//   scale:       out[out_off + i] = alpha * out[out_off + i]           i < len
//   add_scaled:  out[out_off + i] = out[out_off + i] + alpha * x[in_off + i]
//
// Bindings: 0 params (uniform), 1 x (read), 2 out (read_write).

const WG: u32 = 256u;

struct ReduceParams {
    rows: u32, cols: u32, in_off: u32, out_off: u32,
    len: u32, alpha: f32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // The host folds grids past 65535 workgroups into y (grid_1d).
    let j = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (j >= p.cols) {
        return;
    }
    var acc = 0.0;
    for (var i = 0u; i < p.rows; i = i + 1u) {
        acc = acc + x[p.in_off + i * p.cols + j];
    }
    out[p.out_off + j] = acc;
}

@compute @workgroup_size(256)
fn column_sums_batched(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // The host folds grids past 65535 workgroups into y (grid_1d).
    let j = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (j >= p.cols) {
        return;
    }
    // Rows are added one at a time in order (the CPU reference's order, to the bit), but
    // loaded eight at a time: the loads do not depend on the sum, so a GPU keeps eight in
    // flight instead of waiting on each (measured on an H100: 27 us for 128 x 64, one load
    // at a time).
    var acc = 0.0;
    let groups = p.rows / 8u;
    for (var g = 0u; g < groups; g = g + 1u) {
        let base = p.in_off + g * 8u * p.cols + j;
        let c = p.cols;
        // Separate values, not an array: a local array becomes per-lane memory on CPU drivers.
        let v0 = x[base];
        let v1 = x[base + c];
        let v2 = x[base + 2u * c];
        let v3 = x[base + 3u * c];
        let v4 = x[base + 4u * c];
        let v5 = x[base + 5u * c];
        let v6 = x[base + 6u * c];
        let v7 = x[base + 7u * c];
        acc = acc + v0;
        acc = acc + v1;
        acc = acc + v2;
        acc = acc + v3;
        acc = acc + v4;
        acc = acc + v5;
        acc = acc + v6;
        acc = acc + v7;
    }
    for (var i = groups * 8u; i < p.rows; i = i + 1u) {
        acc = acc + x[p.in_off + i * p.cols + j];
    }
    out[p.out_off + j] = acc;
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.len) {
        return;
    }
    out[p.out_off + i] = p.alpha * out[p.out_off + i];
}

@compute @workgroup_size(256)
fn add_scaled(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.len) {
        return;
    }
    out[p.out_off + i] = out[p.out_off + i] + p.alpha * x[p.in_off + i];
}
