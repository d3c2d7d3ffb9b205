// What gather.wgsl, gather_vec4.wgsl and gather_texture.wgsl share: parameters, the per-step
// batch start, and the resident dataset's bindings (0-5). A library, not a kernel: appended to
// each, which declare the outputs x (binding 6: scalar, vec4 or texture) and y (binding 7).

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
// lut[p] = p / 255 as the host computes it, so the GPU and CPU agree bit for bit. A uniform
// buffer, not a storage one: on lavapipe a uniform load with a varying index is one vector
// gather, a storage load a per-lane scalar loop (four of them per word here).
@group(0) @binding(5) var<uniform> lut: array<vec4<f32>, 64>;

fn lut_at(v: u32) -> f32 {
    return lut[v >> 2u][v & 3u];
}

// The four pixels of one packed word (byte 0 first) as floats: one texel, or one vec4 of x.
fn unpack4(packed: u32) -> vec4<f32> {
    return vec4<f32>(
        lut_at(packed & 0xffu),
        lut_at((packed >> 8u) & 0xffu),
        lut_at((packed >> 16u) & 0xffu),
        lut_at(packed >> 24u),
    );
}
