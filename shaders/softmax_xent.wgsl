// Fused softmax cross-entropy, forward and the first step of backward, in one pass.
//
// For each row r < rows of logits [rows, classes] (at logits_off) with label y = labels[r]:
//   lse       = max + log(sum exp(z - max))          (stable for logits of +-1e4)
//   loss_r    = lse - z[y]
//   dlogits   = (softmax(z) - onehot(y)) * scale     (scale = 1 / global batch)
//   correct_r = (first index of the maximum) == y
// and metrics[metrics_off] += sum loss_r, metrics[metrics_off + 1] += sum correct_r, so the
// loss and accuracy of a whole epoch accumulate on the device and are read back once.
//
// One workgroup does every row (rows are short: `classes` values each); it then reduces the
// per-invocation sums in shared memory, so the metrics update needs no atomics on f32.
// Bindings: 0 params (uniform), 1 logits (read), 2 labels (read, u32), 3 dlogits (read_write),
// 4 metrics (read_write).
// Requires: softmax_xent_row.wgsl

const WG: u32 = 256u;

struct XentParams {
    rows: u32, classes: u32, logits_off: u32, dlogits_off: u32,
    labels_off: u32, metrics_off: u32, write_grad: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> p: XentParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> correct_part: array<f32, WG>;

@compute @workgroup_size(256)
fn softmax_xent(@builtin(local_invocation_index) lid: u32) {
    var loss_sum = 0.0;
    var correct = 0.0;
    for (var r = lid; r < p.rows; r = r + WG) {
        let base = p.logits_off + r * p.classes;
        let gbase = p.dlogits_off + r * p.classes;
        let row = xent_row(base, labels[p.labels_off + r], p.classes, gbase, p.write_grad != 0u, p.scale);
        loss_sum = loss_sum + row.x;
        correct = correct + row.y;
    }
    add_metrics(lid, loss_sum, correct);
}
