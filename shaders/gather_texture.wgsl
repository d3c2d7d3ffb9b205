// gather_vec4.wgsl writing the batch into an rgba32float storage texture instead of a buffer,
// for when every product that reads the batch is a texture matmul variant: the batch is then
// packed once, by the gather itself, instead of copied into a buffer and packed again by each
// product (src/train/replica.rs). Texel (w, r) holds pixels 4w..4w+3 of batch row r, exactly
// as pack_texture.wgsl would lay out the f32 batch. Needs features == 4 * words.
//   x(w, r) = lut[the 4 bytes of word w of image perm[start + r]]
// Bindings: 0-5 as gather.wgsl, 6 x (write-only storage texture), 7 y (read_write).

// Requires: gather_common.wgsl

@group(0) @binding(6) var x: texture_storage_2d<rgba32float, write>;
@group(0) @binding(7) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64, 4)
fn gather_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = gid.x;
    let r = gid.y;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (r >= p.rows || w >= p.words) {
        return;
    }
    let image = perm[step.start + r];
    let packed = pixels[image * p.words + w];
    let texel = vec4<f32>(
        lut_at(packed & 0xffu),
        lut_at((packed >> 8u) & 0xffu),
        lut_at((packed >> 16u) & 0xffu),
        lut_at(packed >> 24u),
    );
    textureStore(x, vec2<u32>(w, r), texel);
    if (w == 0u) {
        y[r] = labels[image];
    }
}
