// gather_vec4.wgsl writing the batch into an rgba32float storage texture instead of a buffer,
// for when every product that reads the batch is a texture matmul variant: the batch is then
// packed once, by the gather itself, instead of copied into a buffer and packed again by each
// product (src/train/replica.rs). Texel (w, r) holds pixels 4w..4w+3 of batch row r, exactly
// as pack_texture.wgsl would lay out the f32 batch. Needs features == 4 * words.
//   x(w, r) = lut[the 4 bytes of word w of image perm[start + r]]
// Bindings: 0-5 as gather.wgsl, 6 x (write-only storage texture), 7 y (read_write), 8 the
// pixels as vec4<u32>; the _pack entry points also 9-11 (below).

// Requires: gather_common.wgsl pack_params.wgsl

@group(0) @binding(6) var x: texture_storage_2d<rgba32float, write>;
// The pixel words again, as vec4<u32>, for gather_tex4 (same buffer as binding 2).
@group(0) @binding(8) var<storage, read> pixels4: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read_write> y: array<u32>;

// Word w of batch row r (the grid's invocation (w, r)) into its texel.
fn gather_word(w: u32, r: u32) {
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

// Words 4 w4 .. 4 w4 + 3 of batch row r into their four texels.
fn gather_words4(w4: u32, r: u32) {
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

@compute @workgroup_size(64, 4)
fn gather_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    gather_word(gid.x, gid.y);
}

// Four words (16 pixels, four texels) per invocation, for images of a multiple of 4 words
// (MNIST: 196): one vec4<u32> load of pixels and one index load instead of four each. (On
// lavapipe every storage-buffer load is a per-lane loop, whose cost a vec4 shares.)
@compute @workgroup_size(64, 4)
fn gather_tex4(@builtin(global_invocation_id) gid: vec3<u32>) {
    gather_words4(gid.x, gid.y);
}

// gather_tex_pack, gather_tex4_pack: the gather, and in the workgroups past its grid along y
// the first layer's weights copied into their texture exactly as pack_texture.wgsl's
// pack_texture does (texel (c, r) = vec4 c of row r). One launch instead of two: the two
// jobs touch nothing in common, and nothing in a step writes the weights before its first
// product reads them.

@group(0) @binding(9) var<uniform> wp: PackParams;
@group(0) @binding(10) var<storage, read> w_src: array<vec4<f32>>;
@group(0) @binding(11) var w_tex: texture_storage_2d<rgba32float, write>;

// Workgroups along y that gather (4 batch rows each); those past them pack.
fn gather_groups() -> u32 {
    return (p.rows + 3u) / 4u;
}

// Texel t of the weights' texture, counted over the pack's workgroups (256 invocations each).
fn pack_weights(wid: vec3<u32>, nwg: vec3<u32>, li: u32) {
    let t = ((wid.y - gather_groups()) * nwg.x + wid.x) * 256u + li;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (t >= wp.rows * wp.cols4) {
        return;
    }
    let r = t / wp.cols4;
    let c = t % wp.cols4;
    textureStore(w_tex, vec2<u32>(c, r), w_src[wp.off4 + r * wp.rs4 + c]);
}

@compute @workgroup_size(64, 4)
fn gather_tex_pack(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    if (wid.y < gather_groups()) {
        gather_word(gid.x, gid.y);
    } else {
        pack_weights(wid, nwg, li);
    }
}

@compute @workgroup_size(64, 4)
fn gather_tex4_pack(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    if (wid.y < gather_groups()) {
        gather_words4(gid.x, gid.y);
    } else {
        pack_weights(wid, nwg, li);
    }
}
