// gather_vec4.wgsl writing the batch into an rgba32float storage texture instead of a buffer,
// for when every product that reads the batch is a texture matmul variant: the batch is then
// packed once, by the gather itself, instead of copied into a buffer and packed again by each
// product (src/train/replica.rs). Texel (w, r) holds pixels 4w..4w+3 of batch row r, exactly
// as pack_texture.wgsl would lay out the f32 batch. Needs features == 4 * words.
//   x(w, r) = lut[the 4 bytes of word w of image perm[start + r]]
// Bindings: 0-5 as gather.wgsl, 6 x (write-only storage texture), 7 y (read_write).

// Requires: gather_common.wgsl

@group(0) @binding(6) var x: texture_storage_2d<rgba32float, write>;
// The pixel words again, as vec4<u32>, for gather_tex4 (same buffer as binding 2).
@group(0) @binding(8) var<storage, read> pixels4: array<vec4<u32>>;
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
    textureStore(x, vec2<u32>(w, r), unpack4(packed));
    if (w == 0u) {
        y[r] = labels[image];
    }
}

// Four words (16 pixels, four texels) per invocation, for images of a multiple of 4 words
// (MNIST: 196): one vec4<u32> load of pixels and one index load instead of four each. (On
// lavapipe every storage-buffer load is a per-lane loop, whose cost a vec4 shares.)
@compute @workgroup_size(64, 4)
fn gather_tex4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w4 = gid.x;
    let r = gid.y;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (r >= p.rows || w4 * 4u >= p.words) {
        return;
    }
    let image = perm[step.start + r];
    let packed = pixels4[image * (p.words / 4u) + w4];
    textureStore(x, vec2<u32>(4u * w4, r), unpack4(packed.x));
    textureStore(x, vec2<u32>(4u * w4 + 1u, r), unpack4(packed.y));
    textureStore(x, vec2<u32>(4u * w4 + 2u, r), unpack4(packed.z));
    textureStore(x, vec2<u32>(4u * w4 + 3u, r), unpack4(packed.w));
    if (w4 == 0u) {
        y[r] = labels[image];
    }
}
