// The fused softmax head's backward: what softmax_head_train runs after the last dlogits, the
// last dense layer's gradients, with the same bits as the launches it replaces. A library, not
// a kernel: appended to softmax_head.wgsl, which declares `p`, `h`, `params`, `dlogits` and WG.
// Uses activation_fns.wgsl.
//
// Shapes (n = p.n outputs, k = p.k inputs, dZ = dlogits [rows, n] at dlogits_off):
//   dW [k, n] at grads[dw_off]: dW(q, j) = sum_r h(r, q) dZ(r, j)        (the AtB product)
//   db [n]    at grads[db_off]: db(j) = sum_r dZ(r, j)                   (column sums)
//   dX [rows, k] at dx[dx_off], when has_dx:
//     dX(r, q) = (sum_j dZ(r, j) W(q, j)) * act_grad(act, z[z_off + r k + q])  (ABt, epilogue)
//
// Same bits as the separate launches (`matmul_with_sums` for dW and db, then the ABt product
// with the activation-backward epilogue): each output is one lane's `acc = acc + a * b` over
// the inner index in order from 0.0 (rows for dW, outputs for dX), as every matmul variant
// adds; each column sum adds the rows in order from 0.0, as column_sums does; dX's store is
// matmul_epilogue.wgsl's `v * act_grad(code, z)` (1.0 for the identity: the same value).
//
// How the work is spread: the 256 invocations take dW in blocks of 4 inputs x 4 outputs
// (blocks lid, lid + 256, ...; 8 loads per 16 products, as mm_rb4x4), db's columns on the
// invocations after the last dW block's, and dX in blocks of 4 rows x 4 inputs. No phase
// reads what another writes (dW and db go to grads, dX to dx), so none waits for another.
// Bindings (after softmax_head.wgsl's 0-6): 7 grads (read_write), 8 z (read), 9 dx (read_write).

@group(0) @binding(7) var<storage, read_write> grads: array<f32>;
@group(0) @binding(8) var<storage, read> z: array<f32>;
@group(0) @binding(9) var<storage, read_write> dx: array<f32>;

// dW's block `blk`: inputs q0..q0+3 x outputs j0..j0+3, summed over the rows. Loads are
// clamped into h and dZ (valid memory, no branch in the loop); only outputs inside are stored.
fn dw_block(blk: u32) {
    let col_blocks = (p.n + 3u) / 4u;
    let q0 = (blk / col_blocks) * 4u;
    let j0 = (blk % col_blocks) * 4u;
    let lq = p.k - 1u;
    let lc = p.n - 1u;
    let qa = vec4<u32>(min(q0, lq), min(q0 + 1u, lq), min(q0 + 2u, lq), min(q0 + 3u, lq)) + p.h_off;
    let jd = vec4<u32>(min(j0, lc), min(j0 + 1u, lc), min(j0 + 2u, lc), min(j0 + 3u, lc)) + p.dlogits_off;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var r = 0u; r < p.rows; r = r + 1u) {
        let hr = r * p.k;
        let dr = r * p.n;
        let dv = vec4<f32>(dlogits[jd.x + dr], dlogits[jd.y + dr], dlogits[jd.z + dr], dlogits[jd.w + dr]);
        acc0 = acc0 + h[qa.x + hr] * dv;
        acc1 = acc1 + h[qa.y + hr] * dv;
        acc2 = acc2 + h[qa.z + hr] * dv;
        acc3 = acc3 + h[qa.w + hr] * dv;
    }
    // Bounds guard: inputs past k were computed from clamped loads; not stored.
    store_dw4(q0, j0, acc0);
    if (q0 + 1u <= lq) {
        store_dw4(q0 + 1u, j0, acc1);
    }
    if (q0 + 2u <= lq) {
        store_dw4(q0 + 2u, j0, acc2);
    }
    if (q0 + 3u <= lq) {
        store_dw4(q0 + 3u, j0, acc3);
    }
}

// Stores dW(q, j0 + t) = v[t] for the outputs of the block inside the layer.
fn store_dw4(q: u32, j0: u32, v: vec4<f32>) {
    // A bound the compiler cannot see keeps this a loop (see store_row4 in matmul_epilogue.wgsl).
    let count = min(4u, p.n - j0);
    for (var t = 0u; t < count; t = t + 1u) {
        grads[p.dw_off + q * p.n + j0 + t] = v[t];
    }
}

// db(j) = the rows of dZ's column j added in order from 0.0.
fn db_column(j: u32) {
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r = r + 1u) {
        acc = acc + dlogits[p.dlogits_off + r * p.n + j];
    }
    grads[p.db_off + j] = acc;
}

// dX's block `blk`: rows r0..r0+3 x inputs q0..q0+3, summed over the outputs, each stored
// times the layer below's activation derivative at z.
fn dx_block(blk: u32) {
    let col_blocks = (p.k + 3u) / 4u;
    let r0 = (blk / col_blocks) * 4u;
    let q0 = (blk % col_blocks) * 4u;
    let lr = p.rows - 1u;
    let lq = p.k - 1u;
    let rd = vec4<u32>(min(r0, lr), min(r0 + 1u, lr), min(r0 + 2u, lr), min(r0 + 3u, lr)) * p.n + p.dlogits_off;
    let qw = vec4<u32>(min(q0, lq), min(q0 + 1u, lq), min(q0 + 2u, lq), min(q0 + 3u, lq)) * p.n + p.w_off;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var j = 0u; j < p.n; j = j + 1u) {
        let wv = vec4<f32>(params[qw.x + j], params[qw.y + j], params[qw.z + j], params[qw.w + j]);
        acc0 = acc0 + dlogits[rd.x + j] * wv;
        acc1 = acc1 + dlogits[rd.y + j] * wv;
        acc2 = acc2 + dlogits[rd.z + j] * wv;
        acc3 = acc3 + dlogits[rd.w + j] * wv;
    }
    // Bounds guard: rows past the batch were computed from clamped loads; not stored.
    store_dx4(r0, q0, acc0);
    if (r0 + 1u <= lr) {
        store_dx4(r0 + 1u, q0, acc1);
    }
    if (r0 + 2u <= lr) {
        store_dx4(r0 + 2u, q0, acc2);
    }
    if (r0 + 3u <= lr) {
        store_dx4(r0 + 3u, q0, acc3);
    }
}

// Stores dX(r, q0 + t) = v[t] * act'(z(r, q0 + t)) for the inputs of the block inside the layer.
fn store_dx4(r: u32, q0: u32, v: vec4<f32>) {
    // A bound the compiler cannot see keeps this a loop (see store_row4 in matmul_epilogue.wgsl).
    let count = min(4u, p.k - q0);
    for (var t = 0u; t < count; t = t + 1u) {
        let idx = r * p.k + q0 + t;
        dx[p.dx_off + idx] = v[t] * act_grad(p.act, z[p.z_off + idx]);
    }
}

// The layer's backward; every invocation calls it after the storage barrier that follows the
// last dlogits.
fn head_backward(lid: u32) {
    let dw_blocks = ((p.k + 3u) / 4u) * ((p.n + 3u) / 4u);
    for (var blk = lid; blk < dw_blocks; blk = blk + WG) {
        dw_block(blk);
    }
    // Column j on the invocation after the last dW block's (modulo WG), so that on a GPU the
    // sums run beside the blocks rather than after them.
    for (var j = (lid + WG - dw_blocks % WG) % WG; j < p.n; j = j + WG) {
        db_column(j);
    }
    // Bounds guard: no input gradient when the layer below needs none.
    let dx_blocks = select(0u, ((p.rows + 3u) / 4u) * ((p.k + 3u) / 4u), p.has_dx != 0u);
    for (var blk = lid; blk < dx_blocks; blk = blk + WG) {
        dx_block(blk);
    }
}
