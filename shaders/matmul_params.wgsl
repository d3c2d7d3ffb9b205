// The parameters every matmul variant reads (src/gpu/kernels/matmul.rs `Params`) and the epilogue
// flags. `col_sums != 0`: the launch also writes the column sums of B to c[sums_off..+n], in
// the workgroups from row `sums_row` along y on (see col_sums_slice in the epilogues). A library, not a kernel: appended to matmul.wgsl, matmul_vec4.wgsl,
// matmul_texture.wgsl and matmul_texture_sg.wgsl.

struct MatmulParams {
    m: u32, n: u32, k: u32, flags: u32,
    a_off: u32, a_rs: u32, a_cs: u32, b_off: u32,
    b_rs: u32, b_cs: u32, c_off: u32, bias_off: u32,
    z_off: u32, col_sums: u32, sums_off: u32, sums_row: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;

const HAS_BIAS: u32 = 1u;
const WRITE_PRE: u32 = 2u;
const ACT_BACKWARD: u32 = 4u;
