// Builds one batch on the device from a resident table of f32 features: no feature crosses
// the bus per step. Row r of the batch is row perm[step.start + r] of the table:
//   x[x_off + r * features + f] = values[perm[step.start + r] * features + f]
//   y[r] = labels[perm[step.start + r]]
// The values are copied as they are (no scaling), so the GPU and the CPU see the same bits.
// One invocation per (feature, row).
// Bindings: 0 params (uniform), 1 step (uniform), 2 values (read), 3 labels (read),
// 4 perm (read), 5 x (read_write), 6 y (read_write).

struct GatherParams {
    rows: u32, features: u32, unused: u32, x_off: u32,
}

struct Step {
    start: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

const WORKGROUP_X: u32 = 64u;

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(WORKGROUP_X, 4)
fn gather_values(@builtin(global_invocation_id) gid: vec3<u32>) {
    let f = gid.x;
    let r = gid.y;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (r >= p.rows || f >= p.features) {
        return;
    }
    let row = perm[step.start + r];
    x[p.x_off + r * p.features + f] = values[row * p.features + f];
    if (f == 0u) {
        y[r] = labels[row];
    }
}
