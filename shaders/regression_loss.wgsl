// The regression losses, forward and the first step of backward, in one pass: the mean
// squared error, the mean absolute error and Huber's loss.
//
// For predictions pred [rows, outputs] (at pred_off) and f32 targets y [rows, outputs] (at
// y_off), with e = pred - y and, by kind:
//   kind 0, MSE:   loss = e^2,                               grad = 2 e
//   kind 1, MAE:   loss = |e|,                               grad = sign(e) (0 at e = 0)
//   kind 2, Huber: loss = e^2 / 2 if |e| <= delta, else delta (|e| - delta / 2);
//                  grad = clamp(e, -delta, delta)
//   dpred[r, j] = grad * scale                          (scale = 1 / (global batch * outputs))
//   metrics[metrics_off]                       += sum_r (sum_j loss) / outputs   (loss sum)
//   metrics[metrics_off + 1 + k * outputs + j] += per output j, k = 0..3:
//       sum_r y, sum_r y^2, sum_r e^2, sum_r |e|        (what MAE, RMSE and R^2 need)
// so a whole epoch's sums accumulate on the device and are read back once.
//
// The kind is a uniform value, not an entry point per loss: the losses differ in two lines
// of arithmetic, the branch on it is uniform (every invocation takes the same way), and one
// pipeline serves all three. The loss sums keep the order each loss has always had, so its
// bits do not depend on which kernel computes it: MSE's loss, e^2, is what sq_part already
// reduces, so it adds sq_part / outputs per output and skips a reduction of its own; MAE and
// Huber keep each invocation's running loss in loss_part and reduce it once, at the end.
//
// One workgroup does every row (as softmax_xent.wgsl): for each output it reduces the
// per-invocation sums in shared memory, so the metrics update needs no atomics on f32.
// Bindings: 0 params (uniform), 1 pred (read), 2 y (read, f32), 3 dpred (read_write),
// 4 metrics (read_write).

const WG: u32 = 256u;
const KIND_MSE: u32 = 0u;
const KIND_MAE: u32 = 1u;

struct RegressionParams {
    rows: u32, outputs: u32, pred_off: u32, dpred_off: u32,
    y_off: u32, metrics_off: u32, write_grad: u32, scale: f32,
    kind: u32, delta: f32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: RegressionParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpred: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> y_part: array<f32, WG>;
var<workgroup> y2_part: array<f32, WG>;
var<workgroup> sq_part: array<f32, WG>;
var<workgroup> abs_part: array<f32, WG>;

// (loss, dloss/de) of one residual.
fn loss_grad(e: f32) -> vec2<f32> {
    if (p.kind == KIND_MSE) {
        return vec2<f32>(e * e, 2.0 * e);
    }
    let a = abs(e);
    if (p.kind == KIND_MAE) {
        return vec2<f32>(a, sign(e));
    }
    if (a <= p.delta) {
        return vec2<f32>(0.5 * e * e, e);
    }
    return vec2<f32>(p.delta * (a - 0.5 * p.delta), sign(e) * p.delta);
}

@compute @workgroup_size(256)
fn regression_loss(@builtin(local_invocation_index) lid: u32) {
    // Outputs in turn, every invocation striding over the rows: the loop bounds and the kind
    // are uniform, so every invocation reaches the barriers.
    loss_part[lid] = 0.0;
    for (var j = 0u; j < p.outputs; j = j + 1u) {
        var sl = 0.0;
        var sy = 0.0;
        var sy2 = 0.0;
        var ssq = 0.0;
        var sabs = 0.0;
        for (var r = lid; r < p.rows; r = r + WG) {
            let i = r * p.outputs + j;
            let t = y[p.y_off + i];
            let e = pred[p.pred_off + i] - t;
            let lg = loss_grad(e);
            sl = sl + lg.x;
            sy = sy + t;
            sy2 = sy2 + t * t;
            ssq = ssq + e * e;
            sabs = sabs + abs(e);
            if (p.write_grad != 0u) {
                dpred[p.dpred_off + i] = lg.y * p.scale;
            }
        }
        loss_part[lid] = loss_part[lid] + sl / f32(p.outputs);
        y_part[lid] = sy;
        y2_part[lid] = sy2;
        sq_part[lid] = ssq;
        abs_part[lid] = sabs;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (lid < stride) {
                y_part[lid] = y_part[lid] + y_part[lid + stride];
                y2_part[lid] = y2_part[lid] + y2_part[lid + stride];
                sq_part[lid] = sq_part[lid] + sq_part[lid + stride];
                abs_part[lid] = abs_part[lid] + abs_part[lid + stride];
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            let base = p.metrics_off + 1u + j;
            if (p.kind == KIND_MSE) {
                metrics[p.metrics_off] = metrics[p.metrics_off] + sq_part[0] / f32(p.outputs);
            }
            metrics[base] = metrics[base] + y_part[0];
            metrics[base + p.outputs] = metrics[base + p.outputs] + y2_part[0];
            metrics[base + 2u * p.outputs] = metrics[base + 2u * p.outputs] + sq_part[0];
            metrics[base + 3u * p.outputs] = metrics[base + 3u * p.outputs] + abs_part[0];
        }
        // The shared sums are rewritten for the next output only after lid 0 has read them.
        workgroupBarrier();
    }
    if (p.kind == KIND_MSE) {
        return;
    }
    // Every loss_part written before any is read (a no-op after the loop's last barrier).
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            loss_part[lid] = loss_part[lid] + loss_part[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        metrics[p.metrics_off] = metrics[p.metrics_off] + loss_part[0];
    }
}
