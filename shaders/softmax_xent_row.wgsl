// The softmax cross-entropy of one row, and the workgroup's sum of its rows' metrics: the
// library softmax_xent.wgsl and softmax_head.wgsl share, so that both perform the same f32
// operations in the same order (the head's bits are softmax_xent's). Not a kernel: appended to
// a file that declares `const WG: u32 = 256u`, the storage arrays `logits` (f32), `dlogits`
// (f32, read_write) and `metrics` (f32, read_write), the workgroup arrays
// `loss_part` and `correct_part: array<f32, WG>`, and params `p` with `metrics_off`.

// Row of `classes` logits at `base` with label y:
//   lse = max + log(sum exp(z - max)),  loss = lse - z[y],  correct = (first argmax) == y,
//   and with `write_grad` dlogits at `gbase` = (softmax(z) - onehot(y)) * scale.
// Returns (loss, correct).
fn xent_row(base: u32, y: u32, classes: u32, gbase: u32, write_grad: bool, scale: f32) -> vec2<f32> {
    var mx = logits[base];
    var arg = 0u;
    for (var j = 1u; j < classes; j = j + 1u) {
        let v = logits[base + j];
        if (v > mx) {
            mx = v;
            arg = j;
        }
    }
    var sum = 0.0;
    for (var j = 0u; j < classes; j = j + 1u) {
        sum = sum + exp(logits[base + j] - mx);
    }
    let lse = mx + log(sum);
    // A label out of range would read class 0's logit. None reaches here: a Dataset checks
    // every label against its classes when built, the trainer checks those classes against
    // the model's outputs, and train_step checks the labels it is given. The clamp only keeps
    // the read in bounds.
    let loss = lse - logits[base + min(y, classes - 1u)];
    let correct = select(0.0, 1.0, arg == y);
    if (write_grad) {
        for (var j = 0u; j < classes; j = j + 1u) {
            let prob = exp(logits[base + j] - lse);
            dlogits[gbase + j] = (prob - select(0.0, 1.0, j == y)) * scale;
        }
    }
    return vec2<f32>(loss, correct);
}

// Adds every invocation's (loss_sum, correct) to metrics[metrics_off], metrics[metrics_off + 1]
// by a tree in shared memory (no f32 atomics). Call from every invocation of the workgroup,
// in uniform control flow.
fn add_metrics(lid: u32, loss_sum: f32, correct: f32) {
    loss_part[lid] = loss_sum;
    correct_part[lid] = correct;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            loss_part[lid] = loss_part[lid] + loss_part[lid + stride];
            correct_part[lid] = correct_part[lid] + correct_part[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        metrics[p.metrics_off] = metrics[p.metrics_off] + loss_part[0];
        metrics[p.metrics_off + 1u] = metrics[p.metrics_off + 1u] + correct_part[0];
    }
}
