// Copies a row-major matrix into an rgba32float texture for the texture matmul variants
// (matmul_texture.wgsl), as it is stored (pack_texture) or transposed (pack_texture_t, so
// that C = A B^T runs the A B kernel). Over a 1-D grid folded into y past 65535 workgroups
// (see grid_1d in src/gpu/kernels/pipeline.rs).
//   pack_texture    one texel per invocation.
//                   source: rows x cols4 vec4s, rows rs4 vec4s apart, from vec4 off4;
//                   texture: cols4 x rows texels, texel (x, y) = source row y, vec4 x.
//   pack_texture_t  a 4x4 block per invocation: 4 vec4 loads, one from each of 4 source
//                   rows, and 4 texels, their columns; neighbouring invocations write
//                   neighbouring texels of a texture row. (One texel at a time took a scalar
//                   load per float, and on lavapipe each storage load is a loop over the
//                   lanes: twice pack_texture's time for as many texels. Blocks taken down
//                   the source's rows instead, so that the loads were neighbours and the
//                   stores not, were no faster than that. BENCHMARKS.md, "The transposed pack".)
//                   source: (4 cols4) x rows floats, rows rs4 floats apart, from vec4 off4,
//                   with rows and rs4 multiples of 4 (the host checks);
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

@compute @workgroup_size(64)
fn pack_texture_t(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let t = gid.x + gid.y * groups.x * 64u;
    let rows4 = p.rows / 4u;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (t >= rows4 * p.cols4) {
        return;
    }
    let x = t % p.cols4;
    let y4 = t / p.cols4;
    let s = p.rs4 / 4u;
    let first = p.off4 + 4u * x * s + y4;
    let r0 = src[first];
    let r1 = src[first + s];
    let r2 = src[first + 2u * s];
    let r3 = src[first + 3u * s];
    let y = 4u * y4;
    textureStore(dst, vec2<u32>(x, y), vec4<f32>(r0.x, r1.x, r2.x, r3.x));
    textureStore(dst, vec2<u32>(x, y + 1u), vec4<f32>(r0.y, r1.y, r2.y, r3.y));
    textureStore(dst, vec2<u32>(x, y + 2u), vec4<f32>(r0.z, r1.z, r2.z, r3.z));
    textureStore(dst, vec2<u32>(x, y + 3u), vec4<f32>(r0.w, r1.w, r2.w, r3.w));
}
