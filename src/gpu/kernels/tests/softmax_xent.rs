//! Softmax cross-entropy against the CPU reference (`crate::cpu`) and an f64 log-sum-exp,
//! on lavapipe: loss sum, correct count and gradient at awkward sizes, huge logits, and
//! accumulation of the metrics across launches.
//!
//! Tolerances: see the module header of `gpu/kernels/tests/common.rs` (u, RTOL, EPS_ONE, FLUSH and
//! the bound used for each kind of kernel).

use super::common::*;
use super::*;
use crate::cpu;
use crate::gpu::kernels::{submit, XentCall};

/// Per-row quantities in f64: (lse, |ln sum|).
fn lse_f64(row: &[f32]) -> (f64, f64) {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let ln_sum = row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
    (m + ln_sum, ln_sum)
}

/// One backend's error on row r's loss `lse - z_y`: rounding of `m + ln(sum)` and of the
/// difference (u each on |lse| and |z_y|, doubled), the sum of `classes` exps (their RTOL and
/// `classes u`), and log's 2^-21 absolute error near 1.
fn row_loss_err(row: &[f32], y: usize) -> f64 {
    let (lse, ln_sum) = lse_f64(row);
    4.0 * U * (lse.abs() + (row[y] as f64).abs())
        + RTOL * (1.0 + ln_sum)
        + row.len() as f64 * U
        + 1.0 / 2_097_152.0
}

/// One backend's error on `(p_j - onehot) * scale`: the kernel forms `exp(z_j - lse)`, whose
/// argument carries `u (|z_j| + |lse|)` of rounding (as if the logits were perturbed by a few
/// ULP: at |z| = 1e4 that is 5e-4 relative), exp's RTOL, the sum's `classes u`, and the
/// rounding of the subtraction of the one-hot.
fn dlogit_err(row: &[f32], j: usize, scale: f32) -> f64 {
    let (lse, _) = lse_f64(row);
    let p = (row[j] as f64 - lse).exp();
    (scale as f64).abs()
        * (p * (RTOL + 4.0 * U * ((row[j] as f64).abs() + lse.abs()) + 2.0 * row.len() as f64 * U) + 2.0 * U)
        + FLUSH
}

/// Logits in [-5, 5); even rows labelled with their argmax so that the correct count is not
/// tiny; with 7+ rows, row 1 is all equal (label 0: correct, the first maximum wins) and row 2
/// ties classes 0 and 1 with label 1 (wrong, for the same reason).
fn xent_case(rows: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut logits: Vec<f32> = random(rows * classes, seed).iter().map(|v| v * 5.0).collect();
    let picks = random(rows, seed + 1);
    let mut labels: Vec<u32> =
        picks.iter().map(|p| (((p + 1.0) * 0.5 * classes as f32) as usize).min(classes - 1) as u32).collect();
    for r in (0..rows).step_by(2) {
        let row = &logits[r * classes..(r + 1) * classes];
        let arg = (1..classes).fold(0, |a, j| if row[j] > row[a] { j } else { a });
        labels[r] = arg as u32;
    }
    if rows >= 7 {
        logits[classes..2 * classes].fill(0.5);
        labels[1] = 0;
        logits[2 * classes..3 * classes].fill(-1.0);
        logits[2 * classes] = 2.0;
        logits[2 * classes + 1] = 2.0;
        labels[2] = 1;
    }
    (logits, labels)
}

struct XentRun {
    metrics: Vec<f32>,
    dlogits: Vec<f32>,
}

/// One launch with the metrics at `slot` of a 6-float buffer of sentinels around zeros, run
/// `times` times; with `grad`, dlogits at float 2 of a padded buffer.
fn run_xent(logits: &[f32], labels: &[u32], classes: usize, scale: f32, grad: bool, times: usize) -> XentRun {
    let f = fixture();
    let rows = labels.len();
    let lb = upload(&f.gpu, &padded(logits, 3));
    let yb = upload_u32(&f.gpu, &[vec![7u32; 1], labels.to_vec()].concat());
    let metrics = upload(&f.gpu, &[SENTINEL, SENTINEL, 0.0, 0.0, SENTINEL, SENTINEL]);
    let db = upload(&f.gpu, &padded(&vec![0.0; rows * classes], 2));
    let call = XentCall {
        rows,
        classes,
        logits: (&lb, 3),
        labels: (&yb, 1),
        dlogits: grad.then_some((&db, 2)),
        scale,
        metrics: (&metrics, 2),
    };
    let d = f.kernels.xent.record(&f.gpu, &call).expect("record");
    for _ in 0..times {
        submit(&f.gpu, &[&d]);
    }
    let m = read(&f.gpu, &metrics, 6);
    assert_untouched("metrics around the slot", &[&m[..2], &m[4..]].concat());
    let (dlogits, pad) = split_padded(&read(&f.gpu, &db, rows * classes + 4), 2);
    assert_untouched("dlogits", &pad);
    XentRun { metrics: m[2..4].to_vec(), dlogits }
}

#[test]
fn softmax_xent_matches_the_cpu_loss_count_and_gradient() {
    let _serial = serial();
    for &rows in &[1usize, 7, 128, 1000] {
        for &classes in &[2usize, 10, 65] {
            let (logits, labels) = xent_case(rows, classes, (rows * 100 + classes) as u64);
            let scale = 1.0 / rows as f32;
            let want = cpu::softmax_xent(&logits, &labels, classes, scale).expect("cpu xent");
            let got = run_xent(&logits, &labels, classes, scale, true, 1);
            let name = format!("rows={rows} classes={classes}");
            let row = |r: usize| &logits[r * classes..(r + 1) * classes];
            // Both backends within sum_r err_r of the exact row losses, and their summation
            // orders (sequential here, strided + tree there) each within rows u sum|loss_r|.
            let loss_abs: f64 =
                (0..rows).map(|r| lse_f64(row(r)).0 - row(r)[labels[r] as usize] as f64).sum();
            let tol = 2.0 * (0..rows).map(|r| row_loss_err(row(r), labels[r] as usize)).sum::<f64>()
                + 2.0 * rows as f64 * U * loss_abs;
            let err = (got.metrics[0] as f64 - want.loss_sum as f64).abs();
            assert!(
                err <= tol,
                "{name}: loss sum {} but the cpu says {} (err {err:e} > tol {tol:e})",
                got.metrics[0],
                want.loss_sum
            );
            assert_eq!(got.metrics[1], want.correct as f32, "{name}: correct count");
            assert_close(&format!("{name} dlogits"), &got.dlogits, &want.dlogits, |i| {
                2.0 * dlogit_err(row(i / classes), i % classes, scale)
            });
        }
    }
}

/// Logits of +-1e4 (exp overflows without the max subtracted): finite, and equal to an f64
/// log-sum-exp within one backend's error (row_loss_err, dlogit_err).
#[test]
fn softmax_xent_is_stable_for_huge_logits() {
    let _serial = serial();
    let classes = 3;
    let logits: Vec<f32> = vec![
        1e4, 9999.5, -1e4, // two near the top
        -1e4, -1e4, -9999.0, // all very negative
        1e4, 1e4, 1e4, // three-way tie
        -1e4, 1e4, 0.0, // one dominates, label wrong
    ];
    let labels = [0u32, 2, 1, 0];
    let got = run_xent(&logits, &labels, classes, 1.0, true, 1);
    let row = |r: usize| &logits[r * classes..(r + 1) * classes];
    let mut want_loss = 0.0;
    let mut tol = 0.0;
    for (r, &y) in labels.iter().enumerate() {
        let (lse, _) = lse_f64(row(r));
        want_loss += lse - row(r)[y as usize] as f64;
        tol += row_loss_err(row(r), y as usize);
        for j in 0..classes {
            let want = (row(r)[j] as f64 - lse).exp() - if j == y as usize { 1.0 } else { 0.0 };
            let g = got.dlogits[r * classes + j] as f64;
            let t = dlogit_err(row(r), j, 1.0);
            assert!(
                g.is_finite() && (g - want).abs() <= t,
                "row {r} class {j}: dlogit {g:e}, f64 says {want:e} (tol {t:e})"
            );
        }
    }
    tol += 4.0 * U * want_loss.abs();
    let loss = got.metrics[0] as f64;
    assert!(
        loss.is_finite() && (loss - want_loss).abs() <= tol,
        "loss sum {loss}, f64 says {want_loss} (tol {tol:e})"
    );
    // Row 0 (label 0 = max), row 1 (label 2 = max); row 2 ties: first index 0 != label 1.
    assert_eq!(got.metrics[1], 2.0, "correct count");
}

/// `metrics[slot] +=`: a second launch adds the same sums (doubling is exact in binary), and
/// without a gradient buffer nothing else is written (the metrics buffer stands in for the
/// unbound dlogits, so a stray gradient write would clobber the sentinels around the slot).
#[test]
fn softmax_xent_metrics_accumulate_and_evaluation_writes_no_gradient() {
    let _serial = serial();
    let (classes, rows) = (10, 128);
    let (logits, labels) = xent_case(rows, classes, 77);
    let once = run_xent(&logits, &labels, classes, 0.5, true, 1);
    let twice = run_xent(&logits, &labels, classes, 0.5, true, 2);
    assert_eq!(
        twice.metrics,
        [2.0 * once.metrics[0], 2.0 * once.metrics[1]],
        "two launches must add up exactly"
    );
    assert_eq!(twice.dlogits, once.dlogits, "the gradient is overwritten, not accumulated");
    let eval = run_xent(&logits, &labels, classes, 0.5, false, 1);
    assert_eq!(eval.metrics, once.metrics, "evaluation computes the same loss and count");
    let (_, want_correct) = cpu::xent_loss(&logits, &labels, classes).expect("cpu loss");
    assert_eq!(eval.metrics[1], want_correct as f32, "evaluation correct count");
}
