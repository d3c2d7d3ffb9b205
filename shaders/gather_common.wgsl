// What gather.wgsl and gather_vec4.wgsl share: parameters, the per-step batch start, and the
// resident dataset's bindings (0-5). A library, not a kernel: appended to both, which declare
// the outputs x (binding 6, scalar or vec4) and y (binding 7).

struct GatherParams {
    rows: u32, features: u32, words: u32, x_off: u32,
}

struct Step {
    start: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> pixels: array<u32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;
@group(0) @binding(5) var<storage, read> lut: array<f32, 256>;
