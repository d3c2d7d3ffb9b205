// Sigmoid cross-entropy (binary and multi-label), forward and the first step of backward, in
// one pass.
//
// For logits z [rows, outputs] (at logits_off) and 0/1 targets t [rows, outputs]: f32 ones in
// y (at y_off) for multi-hot rows, or, when from_labels != 0 (binary, outputs = 1), the row's
// u32 label in labels (at y_off) read as 0.0 or 1.0:
//   loss       = max(z, 0) - z t + log1p(exp(-|z|))       (stable for logits of +-100)
//   dlogits    = (sigmoid(z) - t) * scale                (scale = 1 / (global batch * outputs))
//   right      = (z > 0) == (t > 0.5)                    (Keras's BinaryAccuracy, threshold 0.5)
// and metrics[metrics_off] += sum_r (sum_j loss) / outputs, metrics[metrics_off + 1] +=
// sum of right, so an epoch's loss and binary accuracy accumulate on the device and are
// read back once. WGSL has no log1p: log1p_small is Goldberg's form, accurate where 1 + t
// rounds (the CPU twin, cpu/sigmoid_xent.rs, uses the same).
//
// One workgroup does every row (as softmax_xent.wgsl): it reduces the per-invocation sums in
// shared memory, so the metrics update needs no atomics on f32.
// Bindings: 0 params (uniform), 1 logits (read), 2 y (read, f32), 3 labels (read, u32),
// 4 dlogits (read_write), 5 metrics (read_write).

const WG: u32 = 256u;

struct SigmoidParams {
    rows: u32, outputs: u32, logits_off: u32, dlogits_off: u32,
    y_off: u32, metrics_off: u32, write_grad: u32, scale: f32,
    from_labels: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> p: SigmoidParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> metrics: array<f32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> right_part: array<f32, WG>;

// log(1 + t) for t in [0, 1].
fn log1p_small(t: f32) -> f32 {
    let u = 1.0 + t;
    if (u == 1.0) {
        return t;
    }
    return log(u) * (t / (u - 1.0));
}

// The target of element i (row-major index into [rows, outputs]).
fn target_of(i: u32) -> f32 {
    if (p.from_labels != 0u) {
        return f32(labels[p.y_off + i]);
    }
    return y[p.y_off + i];
}

@compute @workgroup_size(256)
fn sigmoid_xent(@builtin(local_invocation_index) lid: u32) {
    var loss_sum = 0.0;
    var right = 0.0;
    // Each invocation strides over whole rows; r < rows guards the last stride.
    for (var r = lid; r < p.rows; r = r + WG) {
        var row = 0.0;
        for (var j = 0u; j < p.outputs; j = j + 1u) {
            let i = r * p.outputs + j;
            let z = logits[p.logits_off + i];
            let t = target_of(i);
            let e = exp(-abs(z));
            row = row + (max(z, 0.0) - z * t + log1p_small(e));
            if ((z > 0.0) == (t > 0.5)) {
                right = right + 1.0;
            }
            if (p.write_grad != 0u) {
                // sigmoid(z) from exp(-|z|): no overflow on either side.
                var s = e / (1.0 + e);
                if (z >= 0.0) {
                    s = 1.0 / (1.0 + e);
                }
                dlogits[p.dlogits_off + i] = (s - t) * p.scale;
            }
        }
        loss_sum = loss_sum + row / f32(p.outputs);
    }
    loss_part[lid] = loss_sum;
    right_part[lid] = right;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            loss_part[lid] = loss_part[lid] + loss_part[lid + stride];
            right_part[lid] = right_part[lid] + right_part[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        metrics[p.metrics_off] = metrics[p.metrics_off] + loss_part[0];
        metrics[p.metrics_off + 1u] = metrics[p.metrics_off + 1u] + right_part[0];
    }
}
