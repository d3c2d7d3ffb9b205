// gather.wgsl for images whose pixel count is a multiple of 4 (MNIST's 784): each invocation
// unpacks one u32 into one vec4 store instead of four scalar stores. Same bindings, params
// and results as gather.wgsl, with x viewed as vec4<f32> (x_off and features multiples of 4).
//   x[x_off/4 + r * features/4 + w] = lut[the 4 bytes of word w of image perm[start + r]]
// Bindings: 0 static params (uniform), 1 step (uniform), 2 pixels (read), 3 labels (read),
// 4 perm (read), 5 lut (uniform), 6 x (read_write, vec4), 7 y (read_write).

// Requires: gather_common.wgsl

@group(0) @binding(6) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64, 4)
fn gather4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = gid.x;
    let r = gid.y;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (r >= p.rows || w >= p.words) {
        return;
    }
    let image = perm[step.start + r];
    let packed = pixels[image * p.words + w];
    x[p.x_off / 4u + r * p.words + w] = unpack4(packed);
    if (w == 0u) {
        y[r] = labels[image];
    }
}
