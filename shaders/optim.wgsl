// Optimizer updates over the whole flat parameter buffer in one dispatch.
//
//   adam: AdamW with bias correction (src/optim.rs has the formulas):
//         p -= lr*wd*p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//         p -= lr * (m * inv_bias1) / (sqrt(v * inv_bias2) + eps)
//   sgd:  u = mu u + g;  p -= lr u            (mu in beta1, u in m)
//
// The step's scalars come from a uniform the trainer fills per step on the device (copied
// from the epoch's schedule), so a whole epoch can be recorded without host round trips.
// Bindings: 0 len (uniform), 1 step scalars (uniform), 2 params (read_write), 3 grads (read),
// 4 m (read_write), 5 v (read_write).
// Requires: optim_common.wgsl

@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    // Bounds guard: the grid is rounded up to whole workgroups.
    if (i >= n.len) {
        return;
    }
    let u = s.beta1 * m[i] + grads[i];
    m[i] = u;
    params[i] = params[i] - s.lr * u;
}

