// Element-wise activation forward and backward (when not fused into a matmul epilogue).
//
//   act_forward:  out[out_off + i] = act(x[in_off + i])                      i < len
//   act_backward: out[out_off + i] = x[in_off + i] * act'(aux[aux_off + i])  (x = dy, aux = z)
//
// Bindings: 0 params (uniform), 1 x (read), 2 aux (read), 3 out (read_write).
// Grid: 1-D over len, folded into y when len needs more than 65535 workgroups.
// Requires: activation_fns.wgsl

const WG: u32 = 256u;

struct ActParams {
    len: u32, code: u32, in_off: u32, aux_off: u32,
    out_off: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ActParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.len) {
        return;
    }
    out[p.out_off + i] = act_apply(p.code, x[p.in_off + i]);
}

@compute @workgroup_size(256)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= p.len) {
        return;
    }
    out[p.out_off + i] = x[p.in_off + i] * act_grad(p.code, aux[p.aux_off + i]);
}
