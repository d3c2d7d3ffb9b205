// What optim.wgsl and optim_vec4.wgsl share: the workgroup width, the update length and the
// per-step scalars (written on the device before each step from the epoch's schedule).
// A library, not a kernel: appended to both.

const WG: u32 = 256u;

struct Len {
    len: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

struct StepScalars {
    lr: f32, beta1: f32, beta2: f32, eps: f32,
    inv_bias1: f32, inv_bias2: f32, weight_decay: f32, _pad0: f32,
}

@group(0) @binding(0) var<uniform> n: Len;
@group(0) @binding(1) var<uniform> s: StepScalars;
