//! The regression losses (mean squared error, mean absolute error, Huber's loss) against their
//! CPU twins (`crate::cpu::regression_into`) on lavapipe: the gradient,
//! the loss sum and the per-output sums at awkward shapes (one row; more rows than the
//! workgroup's 256 invocations; 1757 rows of 3 outputs; residuals of 0 and exactly delta),
//! accumulated over two launches.
//!
//! Tolerances (module header of `common.rs`): MSE's gradient `2 e scale` is a subtraction
//! and two products, each correctly rounded, so within `3 u |ref|` per backend. MAE's and
//! Huber's are `sign(e) * scale` or `clamp(e, -delta, delta) * scale`, where `e` is one
//! correctly rounded subtraction of the same operands on both backends (Vulkan rounds add,
//! subtract and multiply correctly): so the same bits, and at most `2 u |ref|` should a
//! compiler contract differently. Every sum of n terms is within `n u Σ|terms|` per backend,
//! twice that between the two.

use super::common::*;
use super::*;
use crate::cpu::{self, MSE_SUMS};
use crate::gpu::kernels::{regression_slot_len, submit, RegressionCall, RegressionKind};

/// Runs one launch `times` times with the metrics slot at float 2 of a sentinel-padded
/// buffer: `(metrics slot, dpred)`.
fn run_regression(
    kind: RegressionKind,
    pred: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    grad: bool,
    times: usize,
) -> (Vec<f32>, Vec<f32>) {
    let f = fixture();
    let (n, slot) = (y.len(), regression_slot_len(outputs));
    let pb = upload(&f.gpu, &padded(pred, 3));
    let yb = upload(&f.gpu, &padded(y, 1));
    let metrics = upload(&f.gpu, &padded(&vec![0.0; slot], 2));
    let db = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let call = RegressionCall {
        kind,
        rows: n / outputs,
        outputs,
        pred: (&pb, 3),
        y: (&yb, 1),
        dpred: grad.then_some((&db, 2)),
        scale,
        metrics: (&metrics, 2),
    };
    let d = f.kernels.regression.record(&f.gpu, &call).expect("record");
    for _ in 0..times {
        submit(&f.gpu, &[&d]);
    }
    let (m, pad) = split_padded(&read(&f.gpu, &metrics, slot + 4), 2);
    assert_untouched("metrics around the slot", &pad);
    let (dpred, pad) = split_padded(&read(&f.gpu, &db, n + 4), 2);
    assert_untouched("dpred", &pad);
    (m, dpred)
}

#[test]
fn every_kind_matches_the_cpu_gradient_loss_and_sums() {
    let _serial = serial();
    let kinds =
        [RegressionKind::Mse, RegressionKind::Mae, RegressionKind::Huber(1.0), RegressionKind::Huber(0.3)];
    for kind in kinds {
        for &rows in &[1usize, 7, 257, 1000, 1757] {
            for &outputs in &[1usize, 3, 5] {
                let n = rows * outputs;
                let seed = (rows * 10 + outputs) as u64;
                let mut pred: Vec<f32> = random(n, seed).iter().map(|v| v * 3.0).collect();
                let y: Vec<f32> = random(n, seed + 5).iter().map(|v| v * 2.0 + 0.5).collect();
                // A residual of exactly 0 and (for Huber) one at the seam.
                pred[0] = y[0];
                if let (RegressionKind::Huber(delta), true) = (kind, n > 1) {
                    pred[1] = y[1] + delta;
                }
                let scale = 1.0 / n as f32;
                let mut sums = vec![0.0f32; MSE_SUMS * outputs];
                let mut want_d = vec![0.0f32; n];
                let d = Some(&mut want_d[..]);
                let loss = cpu::regression_into(kind, &pred, &y, outputs, scale, &mut sums, d).unwrap();
                let (m, dpred) = run_regression(kind, &pred, &y, outputs, scale, true, 2);
                let name = format!("{kind:?} rows={rows} outputs={outputs}");
                // The module header's bounds: the gradient's, in u |ref|, and the roundings a
                // loss term carries beyond its sum's own (the robust losses' carry a few).
                let (grad_ulps, term_roundings) = match kind {
                    RegressionKind::Mse => (6.0, 2),
                    _ => (2.0, 4),
                };
                assert_close(&format!("{name} dpred"), &dpred, &want_d, |i| {
                    grad_ulps * U * (want_d[i] as f64).abs()
                });
                // Σ|terms| of each sum in f64: the loss terms; y, y², e², |e| per output.
                let e = |i: usize| (pred[i] as f64 - y[i] as f64).abs();
                let l = |i: usize| match kind {
                    RegressionKind::Mse => e(i) * e(i),
                    RegressionKind::Mae => e(i),
                    RegressionKind::Huber(d) if e(i) <= d as f64 => 0.5 * e(i) * e(i),
                    RegressionKind::Huber(d) => d as f64 * e(i),
                };
                let column = |j: usize, f: &dyn Fn(usize) -> f64| (j..n).step_by(outputs).map(f).sum::<f64>();
                let mut terms = vec![(0..n).map(l).sum::<f64>() / outputs as f64];
                for k in 0..MSE_SUMS {
                    for j in 0..outputs {
                        terms.push(match k {
                            0 => column(j, &|i| (y[i] as f64).abs()),
                            1 => column(j, &|i| (y[i] as f64).powi(2)),
                            2 => column(j, &|i| e(i) * e(i)),
                            _ => column(j, &e),
                        });
                    }
                }
                let want: Vec<f32> = [loss].iter().chain(&sums).map(|v| 2.0 * v).collect();
                // Each launch's sums within 2 (n + outputs + term_roundings) u Σ|terms| of the
                // CPU's (the loss also sums over outputs), doubled for two launches.
                let bound =
                    |i: usize| 2.0 * 2.0 * (rows + outputs + term_roundings) as f64 * U * terms[i] + FLUSH;
                assert_close(&format!("{name} metrics"), &m, &want, bound);
            }
        }
    }
}

#[test]
fn evaluation_writes_no_gradient() {
    let _serial = serial();
    let (pred, y) = (vec![1.0, 2.0, 3.0], vec![1.5, 2.0, 2.0]);
    let (m, dpred) = run_regression(RegressionKind::Mse, &pred, &y, 1, 1.0, false, 1);
    assert_eq!(dpred, vec![0.0; 3], "no gradient written when evaluating");
    // e = [-0.5, 0, 1]: loss 1.25, Σy 5.5, Σy² 10.25, Σe² 1.25, Σ|e| 1.5: exact in f32.
    assert_eq!(m, vec![1.25, 5.5, 10.25, 1.25, 1.5]);
    // e = [-0.5, 0, 3]: MAE 3.5; exact in f32.
    let (pred, y) = (vec![1.0, 2.0, 5.0], vec![1.5, 2.0, 2.0]);
    let (m, dpred) = run_regression(RegressionKind::Mae, &pred, &y, 1, 1.0, false, 1);
    assert_eq!(dpred, vec![0.0; 3], "no gradient written when evaluating");
    // Σy 5.5, Σy² 10.25, Σe² 9.25, Σ|e| 3.5.
    assert_eq!(m, vec![3.5, 5.5, 10.25, 9.25, 3.5]);
}

#[test]
fn each_kind_has_its_own_gradient_and_huber_turns_linear() {
    let _serial = serial();
    // e = [-0.5, 0, 3], one launch with scale 1: every value exact in f32.
    let (pred, y) = (vec![1.0, 2.0, 5.0], vec![1.5, 2.0, 2.0]);
    for (kind, loss, grad) in [
        (RegressionKind::Mse, 9.25, [-1.0, 0.0, 6.0]),
        (RegressionKind::Mae, 3.5, [-1.0, 0.0, 1.0]),
        // 0.125 + 0 + 2.5: quadratic below delta, linear beyond; e, then clamped to delta.
        (RegressionKind::Huber(1.0), 2.625, [-0.5, 0.0, 1.0]),
    ] {
        let (m, dpred) = run_regression(kind, &pred, &y, 1, 1.0, true, 1);
        assert_eq!(m[0], loss, "{kind:?} loss sum");
        assert_eq!(dpred, grad, "{kind:?} gradient");
    }
}

#[test]
fn bad_shapes_and_deltas_are_errors() {
    let _serial = serial();
    let f = fixture();
    let b = upload(&f.gpu, &[0.0; 8]);
    let call = |kind, rows, outputs| RegressionCall {
        kind,
        rows,
        outputs,
        pred: (&b, 0),
        y: (&b, 0),
        dpred: None,
        scale: 1.0,
        metrics: (&b, 0),
    };
    for kind in [RegressionKind::Mse, RegressionKind::Mae, RegressionKind::Huber(1.0)] {
        for (rows, outputs, why) in
            [(0, 1, "no rows"), (2, 0, "no outputs"), (9, 1, "past the buffers"), (1, 2, "metrics slot of 9")]
        {
            assert!(
                f.kernels.regression.record(&f.gpu, &call(kind, rows, outputs)).is_err(),
                "{kind:?}: {why}"
            );
        }
    }
    for delta in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let kind = RegressionKind::Huber(delta);
        assert!(f.kernels.regression.record(&f.gpu, &call(kind, 1, 1)).is_err(), "delta {delta}");
    }
}
