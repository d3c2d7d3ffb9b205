// Gathers a batch's f32 regression targets on the device, beside the feature gather of the
// same rows (gather_values.wgsl or gather.wgsl). Row r of the batch is row perm[step.start + r]
// of the resident targets [table rows, outputs]:
//   y[r * outputs + j] = targets[perm[step.start + r] * outputs + j]
// Copied as they are, so the GPU and the CPU see the same bits. One invocation per value.
// Bindings: 0 params (uniform), 1 step (uniform), 2 targets (read), 3 perm (read),
// 4 y (read_write).

struct TargetParams {
    rows: u32, outputs: u32, _pad0: u32, _pad1: u32,
}

struct Step {
    start: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

const WORKGROUP_X: u32 = 64u;

@group(0) @binding(0) var<uniform> p: TargetParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read> perm: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_X)
fn gather_targets(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.rows * p.outputs) {
        return;
    }
    let r = i / p.outputs;
    let j = i % p.outputs;
    y[i] = targets[perm[step.start + r] * p.outputs + j];
}
