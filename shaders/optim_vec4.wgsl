// Optimizer updates four parameters per invocation: the same formulas as optim.wgsl, on
// flat buffers viewed as vec4 arrays (every wgtrain layout pads its length to a multiple of
// 4). A quarter of the invocations: CPU-backed adapters spend most of an update's time on
// per-invocation overhead, and GPUs like the 16-byte loads.
//
//   adam4: AdamW with bias correction, element-wise as in optim.wgsl
//   sgd4:  SGD with momentum (mu in beta1, u in m)
//
// Bindings: 0 len in vec4s (uniform), 1 step scalars (uniform), 2 params (read_write),
// 3 grads (read), 4 m (read_write), 5 v (read_write).
// Requires: optim_common.wgsl

@group(0) @binding(2) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(256)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= n.len) {
        return;
    }
    let g = grads[i];
    var w = params[i];
    if (s.weight_decay > 0.0) {
        w = w - s.lr * s.weight_decay * w;
    }
    let mi = s.beta1 * m[i] + (1.0 - s.beta1) * g;
    let vi = s.beta2 * v[i] + (1.0 - s.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = w - s.lr * (mi * s.inv_bias1) / (sqrt(vi * s.inv_bias2) + s.eps);
}

@compute @workgroup_size(256)
fn sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= n.len) {
        return;
    }
    let u = s.beta1 * m[i] + grads[i];
    m[i] = u;
    params[i] = params[i] - s.lr * u;
}
