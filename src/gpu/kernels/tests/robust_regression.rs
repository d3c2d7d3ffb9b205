//! Mean absolute error and Huber's loss against the CPU twin (`crate::cpu::robust_into`) on
//! lavapipe: the gradient, the loss sum and the per-output sums at awkward shapes (one row;
//! more rows than the workgroup's 256 invocations; 1757 rows of 3 outputs; residuals of 0
//! and exactly delta), accumulated over two launches.
//!
//! Tolerances (module header of `common.rs`): the gradient is `sign(e) * scale` or
//! `clamp(e, -delta, delta) * scale`, where `e` is one correctly rounded subtraction of the
//! same operands on both backends (Vulkan rounds add, subtract and multiply correctly): so
//! the same bits, and at most `2 u |ref|` should a compiler contract differently. Every sum
//! of n terms is within `n u Σ|terms|` per backend, twice that between the two.

use super::common::*;
use super::*;
use crate::cpu::{self, Robust, MSE_SUMS};
use crate::gpu::kernels::{mse_slot_len, submit, RobustCall};

/// Runs one launch `times` times with the metrics slot at float 2 of a sentinel-padded
/// buffer: `(metrics slot, dpred)`.
fn run_robust(
    kind: Robust,
    pred: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    grad: bool,
    times: usize,
) -> (Vec<f32>, Vec<f32>) {
    let f = fixture();
    let (n, slot) = (y.len(), mse_slot_len(outputs));
    let pb = upload(&f.gpu, &padded(pred, 3));
    let yb = upload(&f.gpu, &padded(y, 1));
    let metrics = upload(&f.gpu, &padded(&vec![0.0; slot], 2));
    let db = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let call = RobustCall {
        kind,
        rows: n / outputs,
        outputs,
        pred: (&pb, 3),
        y: (&yb, 1),
        dpred: grad.then_some((&db, 2)),
        scale,
        metrics: (&metrics, 2),
    };
    let d = f.kernels.robust.record(&f.gpu, &call).expect("record");
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
fn robust_losses_match_the_cpu_gradient_loss_and_sums() {
    let _serial = serial();
    for kind in [Robust::Mae, Robust::Huber(1.0), Robust::Huber(0.3)] {
        for &rows in &[1usize, 7, 257, 1757] {
            for &outputs in &[1usize, 3, 5] {
                let n = rows * outputs;
                let seed = (rows * 10 + outputs) as u64;
                let mut pred: Vec<f32> = random(n, seed).iter().map(|v| v * 3.0).collect();
                let y: Vec<f32> = random(n, seed + 5).iter().map(|v| v * 2.0 + 0.5).collect();
                // A residual of exactly 0 and (for Huber) one at the seam.
                pred[0] = y[0];
                if let (Robust::Huber(delta), true) = (kind, n > 1) {
                    pred[1] = y[1] + delta;
                }
                let scale = 1.0 / n as f32;
                let mut sums = vec![0.0f32; MSE_SUMS * outputs];
                let mut want_d = vec![0.0f32; n];
                let loss =
                    cpu::robust_into(kind, &pred, &y, outputs, scale, &mut sums, Some(&mut want_d)).unwrap();
                let (m, dpred) = run_robust(kind, &pred, &y, outputs, scale, true, 2);
                let name = format!("{kind:?} rows={rows} outputs={outputs}");
                assert_close(&format!("{name} dpred"), &dpred, &want_d, |i| {
                    2.0 * U * (want_d[i] as f64).abs()
                });
                // Σ|terms| of each sum in f64: the loss terms; y, y², e², |e| per output.
                let e = |i: usize| (pred[i] as f64 - y[i] as f64).abs();
                let l = |i: usize| match kind {
                    Robust::Mae => e(i),
                    Robust::Huber(d) if e(i) <= d as f64 => 0.5 * e(i) * e(i),
                    Robust::Huber(d) => d as f64 * e(i),
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
                // Each launch's sums within 2 (n + outputs + 2) u Σ|terms| of the CPU's (the
                // loss also sums over outputs and carries its terms' few roundings), doubled
                // for two launches.
                let bound = |i: usize| 2.0 * 2.0 * (rows + outputs + 4) as f64 * U * terms[i] + FLUSH;
                assert_close(&format!("{name} metrics"), &m, &want, bound);
            }
        }
    }
}

#[test]
fn evaluation_writes_no_gradient_and_huber_turns_linear() {
    let _serial = serial();
    // e = [-0.5, 0, 3]: MAE 3.5; Huber(1): 0.125 + 0 + 2.5 = 2.625; exact in f32.
    let (pred, y) = (vec![1.0, 2.0, 5.0], vec![1.5, 2.0, 2.0]);
    let (m, dpred) = run_robust(Robust::Mae, &pred, &y, 1, 1.0, false, 1);
    assert_eq!(dpred, vec![0.0; 3], "no gradient written when evaluating");
    // Σy 5.5, Σy² 10.25, Σe² 9.25, Σ|e| 3.5.
    assert_eq!(m, vec![3.5, 5.5, 10.25, 9.25, 3.5]);
    let (m, dpred) = run_robust(Robust::Huber(1.0), &pred, &y, 1, 1.0, true, 1);
    assert_eq!(m[0], 2.625, "quadratic below delta, linear beyond");
    assert_eq!(dpred, vec![-0.5, 0.0, 1.0], "e, then clamped to delta");
}

#[test]
fn bad_shapes_and_deltas_are_errors() {
    let _serial = serial();
    let f = fixture();
    let b = upload(&f.gpu, &[0.0; 8]);
    let call = |kind, rows, outputs| RobustCall {
        kind,
        rows,
        outputs,
        pred: (&b, 0),
        y: (&b, 0),
        dpred: None,
        scale: 1.0,
        metrics: (&b, 0),
    };
    for (kind, rows, outputs, why) in [
        (Robust::Mae, 0, 1, "no rows"),
        (Robust::Mae, 2, 0, "no outputs"),
        (Robust::Mae, 9, 1, "past the buffers"),
        (Robust::Mae, 1, 2, "metrics slot of 9"),
        (Robust::Huber(0.0), 1, 1, "delta 0"),
        (Robust::Huber(f32::NAN), 1, 1, "delta NaN"),
    ] {
        assert!(f.kernels.robust.record(&f.gpu, &call(kind, rows, outputs)).is_err(), "{why}");
    }
}
