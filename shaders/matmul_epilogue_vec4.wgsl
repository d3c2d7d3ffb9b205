// The epilogue of the texture matmul variants: C and z as vec4 arrays, so a block row of 4
// outputs is one store. (On lavapipe every storage-buffer access is a per-lane loop, so four
// scalar stores cost about four times one vec4 store; for the 784x64 weight gradient the
// stores were a third of the kernel.) A library, not a kernel: appended to
// matmul_texture.wgsl and matmul_texture_sg.wgsl, with matmul_texture_common.wgsl, which
// declares `fn bias_at(j) -> f32`. The host only picks these
// variants when n, c_off and z_off are multiples of 4 (src/gpu/kernels/matmul_variant.rs).
// Uses matmul_params.wgsl and activation_fns.wgsl.

@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> z: array<vec4<f32>>;

// Writes C(i, j0..j0+4) = epilogue(v). Callers pass j0 % 4 == 0; a row past m or a group
// past n (computed from clamped loads) is skipped, and n % 4 == 0 makes groups all-or-nothing.
fn store_row4(i: u32, j0: u32, v: vec4<f32>) {
    if (i >= p.m || j0 >= p.n) {
        return;
    }
    let idx = (i * p.n + j0) / 4u;
    if (p.flags == 0u) {
        c[p.c_off / 4u + idx] = v;
        return;
    }
    var o = v;
    if ((p.flags & HAS_BIAS) != 0u) {
        o = o + vec4<f32>(bias_at(j0), bias_at(j0 + 1u), bias_at(j0 + 2u), bias_at(j0 + 3u));
    }
    let code = (p.flags >> 8u) & 0xffu;
    if ((p.flags & ACT_BACKWARD) != 0u) {
        let zv = z[p.z_off / 4u + idx];
        o = o * vec4<f32>(act_grad(code, zv.x), act_grad(code, zv.y), act_grad(code, zv.z), act_grad(code, zv.w));
    } else {
        if ((p.flags & WRITE_PRE) != 0u) {
            z[p.z_off / 4u + idx] = o;
        }
        o = vec4<f32>(act_apply(code, o.x), act_apply(code, o.y), act_apply(code, o.z), act_apply(code, o.w));
    }
    c[p.c_off / 4u + idx] = o;
}
