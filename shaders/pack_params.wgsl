// The uniform of a pack into a texture (src/gpu/kernels/matmul_texture.rs `PackParams`): what
// pack_texture.wgsl copies, and the first layer's weights that gather_texture.wgsl's _pack entry
// points copy the same way. A library, not a kernel.
//   rows x cols4 texels; the source from vec4 off4, rows rs4 vec4s apart.

struct PackParams {
    rows: u32,
    cols4: u32,
    off4: u32,
    rs4: u32,
}
