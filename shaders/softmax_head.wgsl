// The softmax head in one launch: the last dense layer's product and the fused softmax
// cross-entropy of softmax_xent.wgsl, for a narrow output (the host limits it).
//
// Shapes: h [rows, k] at h_off (the layer's input), W [k, n] at w_off and b [n] at bias_off
// (both in `params`), labels [rows] u32 at labels_off. Writes
//   logits  [rows, n] at logits_off:  logits(i, j) = (sum_q h(i, q) W(q, j)) + b(j)
//   dlogits [rows, n] at dlogits_off: (softmax(logits) - onehot(y)) * scale   (when write_grad)
//   metrics[metrics_off] += sum loss_r, metrics[metrics_off + 1] += sum correct_r.
//
// Same bits as the two launches it replaces (a matmul variant with the bias epilogue, then
// softmax_xent), because it performs the same f32 operations in the same order:
// - each logit is one vector lane's `acc = acc + h * W` for q = 0, 1, ..., k - 1 from 0.0, then
//   `acc + b(j)`, as every matmul variant and matmul_epilogue.wgsl's `store` do (the identity
//   activation returns its argument);
// - the softmax reads those logits back from `logits` and runs softmax_xent.wgsl's row
//   (`xent_row` of softmax_xent_row.wgsl, which both files use), with the same 256 invocations
//   each taking rows lid, lid + 256, ... in order, and the same tree reduction (`add_metrics`).
//
// How the work is spread: one workgroup (the metrics sums need one, as in softmax_xent) walks
// the rows in chunks of 256. For each chunk, the invocations first share its logits in blocks
// of 4 rows x 4 columns (mm_rb4x4's register block: a load of h serves 4 outputs, one of W 4
// rows; blocks lid, lid + 256, ...), then a storage barrier, then invocation lid takes row
// r0 + lid's softmax. On lavapipe a workgroup runs on one thread and each storage load is a
// per-lane loop, so the loads per product decide its speed: 0.5 here, as in mm_rb4x4.
// Bindings: 0 params (uniform), 1 h (read), 2 params (read: W and b), 3 logits (read_write),
// 4 labels (read, u32), 5 dlogits (read_write), 6 metrics (read_write).
// Requires: softmax_xent_row.wgsl

const WG: u32 = 256u;

struct HeadParams {
    rows: u32, n: u32, k: u32, h_off: u32,
    w_off: u32, bias_off: u32, logits_off: u32, dlogits_off: u32,
    labels_off: u32, metrics_off: u32, write_grad: u32, scale: f32,
}

@group(0) @binding(0) var<uniform> p: HeadParams;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> metrics: array<f32>;

var<workgroup> loss_part: array<f32, WG>;
var<workgroup> correct_part: array<f32, WG>;

// Stores logits(i, j0 + t) = v[t] + b(j0 + t) for the columns of the block inside the output.
fn store_logits4(i: u32, j0: u32, v: vec4<f32>) {
    // A bound the compiler cannot see keeps this a loop (see store_row4 in matmul_epilogue.wgsl).
    let count = min(4u, p.n - j0);
    for (var t = 0u; t < count; t = t + 1u) {
        logits[p.logits_off + i * p.n + j0 + t] = v[t] + params[p.bias_off + j0 + t];
    }
}

// Block `blk` of 4 rows x 4 columns of the chunk of `chunk` rows starting at row r0, as
// matmul.wgsl's mm_rb4x4 computes one: loads clamped into the chunk and the output (valid
// memory, no branch in the loop), each lane adding its output's products in k order, and only
// the outputs inside stored. Four rows share each load of W and four columns each load of h.
fn logit_block(r0: u32, chunk: u32, blk: u32) {
    let col_blocks = (p.n + 3u) / 4u;
    let i0 = r0 + (blk / col_blocks) * 4u;
    let j0 = (blk % col_blocks) * 4u;
    let lr = r0 + chunk - 1u;
    let lc = p.n - 1u;
    let ra = vec4<u32>(min(i0, lr), min(i0 + 1u, lr), min(i0 + 2u, lr), min(i0 + 3u, lr)) * p.k + p.h_off;
    let cw = vec4<u32>(min(j0, lc), min(j0 + 1u, lc), min(j0 + 2u, lc), min(j0 + 3u, lc)) + p.w_off;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q = 0u; q < p.k; q = q + 1u) {
        let qw = q * p.n;
        let wv = vec4<f32>(params[cw.x + qw], params[cw.y + qw], params[cw.z + qw], params[cw.w + qw]);
        acc0 = acc0 + h[ra.x + q] * wv;
        acc1 = acc1 + h[ra.y + q] * wv;
        acc2 = acc2 + h[ra.z + q] * wv;
        acc3 = acc3 + h[ra.w + q] * wv;
    }
    // Bounds guard: rows past the chunk were computed from clamped loads; not stored.
    store_logits4(i0, j0, acc0);
    if (i0 + 1u <= lr) {
        store_logits4(i0 + 1u, j0, acc1);
    }
    if (i0 + 2u <= lr) {
        store_logits4(i0 + 2u, j0, acc2);
    }
    if (i0 + 3u <= lr) {
        store_logits4(i0 + 3u, j0, acc3);
    }
}

@compute @workgroup_size(256)
fn softmax_head(@builtin(local_invocation_index) lid: u32) {
    var loss_sum = 0.0;
    var correct = 0.0;
    // No early return before the barriers: every invocation runs every chunk.
    for (var r0 = 0u; r0 < p.rows; r0 = r0 + WG) {
        let chunk = min(WG, p.rows - r0);
        // Bounds guard: only the chunk's blocks of 4 x 4 logits.
        let blocks = ((chunk + 3u) / 4u) * ((p.n + 3u) / 4u);
        for (var blk = lid; blk < blocks; blk = blk + WG) {
            logit_block(r0, chunk, blk);
        }
        // Other invocations wrote this row's logits: make them visible to this one.
        storageBarrier();
        let r = r0 + lid;
        // Bounds guard: the last chunk may hold fewer than 256 rows.
        if (lid < chunk) {
            // softmax_xent.wgsl's row, with `classes` = n.
            let base = p.logits_off + r * p.n;
            let gbase = p.dlogits_off + r * p.n;
            let row = xent_row(base, labels[p.labels_off + r], p.n, gbase, p.write_grad != 0u, p.scale);
            loss_sum = loss_sum + row.x;
            correct = correct + row.y;
        }
    }
    add_metrics(lid, loss_sum, correct);
}
