// Builds one batch on the device from the resident dataset: no pixels cross the bus per step.
//
// The dataset is u8 pixels packed four to a u32, each image padded to `words` u32s. Row r of
// the batch is image perm[step.start + r]:
//   x[x_off + r * features + f] = lut[byte f of that image]       (lut[p] = p / 255 from the host,
//                                                                  so the GPU and CPU agree bit for bit)
//   y[r] = labels[perm[step.start + r]]
// One invocation per (row, 4 features).
// Bindings: 0 static params (uniform), 1 step (uniform), 2 pixels (read), 3 labels (read),
// 4 perm (read), 5 lut (uniform), 6 x (read_write), 7 y (read_write).

// Requires: gather_common.wgsl

@group(0) @binding(6) var<storage, read_write> x: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64, 4)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = gid.x;
    let r = gid.y;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (r >= p.rows || w >= p.words) {
        return;
    }
    let image = perm[step.start + r];
    let packed = pixels[image * p.words + w];
    let base = p.x_off + r * p.features;
    for (var t = 0u; t < 4u; t = t + 1u) {
        let f = w * 4u + t;
        // Padding bytes past `features` belong to no column.
        if (f < p.features) {
            x[base + f] = lut_at((packed >> (8u * t)) & 0xffu);
        }
    }
    if (w == 0u) {
        y[r] = labels[image];
    }
}
