// Copies a row-major matrix into an rgba32float texture for the texture matmul variants
// (matmul_texture.wgsl), as it is stored (pack_texture) or transposed (pack_texture_t, so
// that C = A B^T runs the A B kernel). One texel per invocation, over a 1-D grid folded into
// y past 65535 workgroups (see grid_1d in src/gpu/kernels/pipeline.rs).
//   pack_texture    source: rows x cols4 vec4s, rows rs4 vec4s apart, from vec4 off4;
//                   texture: cols4 x rows texels, texel (x, y) = source row y, vec4 x.
//   pack_texture_t  source: (4 cols4) x rows floats, rows rs4 floats apart, from vec4 off4;
//                   texture: cols4 x rows texels, texel (x, y) = source column y, rows
//                   4x..4x+3 (the transpose, stored as pack_texture stores a matrix).

// Requires: pack_params.wgsl

@group(0) @binding(0) var<uniform> p: PackParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(64)
fn pack_texture(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let t = gid.x + gid.y * groups.x * 64u;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (t >= p.rows * p.cols4) {
        return;
    }
    let y = t / p.cols4;
    let x = t % p.cols4;
    textureStore(dst, vec2<u32>(x, y), src[p.off4 + y * p.rs4 + x]);
}

// Float i of the source.
fn src_at(i: u32) -> f32 {
    return src[i / 4u][i % 4u];
}

@compute @workgroup_size(64)
fn pack_texture_t(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let t = gid.x + gid.y * groups.x * 64u;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (t >= p.rows * p.cols4) {
        return;
    }
    let y = t / p.cols4;
    let x = t % p.cols4;
    let first = 4u * p.off4 + 4u * x * p.rs4 + y;
    let v = vec4<f32>(src_at(first), src_at(first + p.rs4), src_at(first + 2u * p.rs4), src_at(first + 3u * p.rs4));
    textureStore(dst, vec2<u32>(x, y), v);
}
