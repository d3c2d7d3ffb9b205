// Reductions and element-wise helpers for gradients.
//
//   column_sums: out[out_off + j] = sum_i x[in_off + i * cols + j]    (bias gradients)
//                rows summed in order, one invocation per column.
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
