// Copies a row-major matrix into an rgba32float texture for the texture matmul variants
// (matmul_texture.wgsl), as it is stored: one texel per invocation, over a 1-D grid folded
// into y past 65535 workgroups (see grid_1d in src/gpu/kernels/pipeline.rs).
//   source: rows x cols4 vec4s, rows rs4 vec4s apart, from vec4 off4;
//   texture: cols4 x rows texels, texel (x, y) = source row y, vec4 x.
// (B of C = A B^T is packed as stored too: mm_tex_abt reads its rows as C's columns. Packing
// it transposed, for the A B kernel, took 1.2-2.5x this pack's time; BENCHMARKS.md.)

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
