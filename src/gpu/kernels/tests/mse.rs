//! Mean squared error against the CPU reference (`crate::cpu::mse_into`) on lavapipe: the
//! gradient, the loss sum and the per-output sums at awkward shapes (one row; more rows than
//! the workgroup's 256 invocations; several outputs), accumulated over launches.
//!
//! Tolerances (module header of `common.rs`): the gradient `2 e scale` is a subtraction and
//! two products, each correctly rounded, so within `3 u |ref|` per backend; every sum of n terms
//! is within `n u Σ|terms|` per backend, twice that between the two.

use super::common::*;
use super::*;
use crate::cpu::{self, MSE_SUMS};
use crate::gpu::kernels::{mse_slot_len, submit, MseCall};

/// Runs one launch `times` times with the metrics slot at float 2 of a sentinel-padded
/// buffer: `(metrics slot, dpred)`.
fn run_mse(
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
    let call = MseCall {
        rows: n / outputs,
        outputs,
        pred: (&pb, 3),
        y: (&yb, 1),
        dpred: grad.then_some((&db, 2)),
        scale,
        metrics: (&metrics, 2),
    };
    let d = f.kernels.mse.record(&f.gpu, &call).expect("record");
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
fn mse_matches_the_cpu_gradient_loss_and_sums() {
    let _serial = serial();
    for &rows in &[1usize, 7, 257, 1000] {
        for &outputs in &[1usize, 3, 5] {
            let n = rows * outputs;
            let pred: Vec<f32> = random(n, (rows * 10 + outputs) as u64).iter().map(|v| v * 3.0).collect();
            let y: Vec<f32> =
                random(n, (rows * 10 + outputs + 5) as u64).iter().map(|v| v * 2.0 + 0.5).collect();
            let scale = 1.0 / (rows * outputs) as f32;
            let mut sums = vec![0.0f32; MSE_SUMS * outputs];
            let mut want_d = vec![0.0f32; n];
            let loss = cpu::mse_into(&pred, &y, outputs, scale, &mut sums, Some(&mut want_d)).unwrap();
            // Two launches: the metrics accumulate, the gradient is rewritten.
            let (m, dpred) = run_mse(&pred, &y, outputs, scale, true, 2);
            let name = format!("rows={rows} outputs={outputs}");
            assert_close(&format!("{name} dpred"), &dpred, &want_d, |i| 6.0 * U * (want_d[i] as f64).abs());
            // Σ|terms| of each sum in f64: e²/outputs for the loss; y, y², e², |e| per output.
            let e = |i: usize| (pred[i] as f64 - y[i] as f64).abs();
            let column = |j: usize, f: &dyn Fn(usize) -> f64| (j..n).step_by(outputs).map(f).sum::<f64>();
            let mut terms = vec![(0..n).map(|i| e(i) * e(i)).sum::<f64>() / outputs as f64];
            for k in 0..MSE_SUMS {
                for j in 0..outputs {
                    terms.push(match k {
                        0 => column(j, &|i| (y[i] as f64).abs()),
                        1 => column(j, &|i| (y[i] as f64).powi(2)),
                        2 => column(j, &|i| e(i) * e(i)),
                        _ => column(j, &|i| e(i)),
                    });
                }
            }
            let want: Vec<f32> = [loss].iter().chain(&sums).map(|v| 2.0 * v).collect();
            // Each launch's sums within 2 n u Σ|terms| of the CPU's (n + outputs + 2 terms, the loss summing outputs too: the two
            // launches' sums and their addition), doubled for two launches.
            let bound = |i: usize| 2.0 * 2.0 * (rows + outputs + 2) as f64 * U * terms[i] + FLUSH;
            assert_close(&format!("{name} metrics"), &m, &want, bound);
        }
    }
}

#[test]
fn evaluation_writes_no_gradient() {
    let _serial = serial();
    let (pred, y) = (vec![1.0, 2.0, 3.0], vec![1.5, 2.0, 2.0]);
    let (m, dpred) = run_mse(&pred, &y, 1, 1.0, false, 1);
    assert_eq!(dpred, vec![0.0; 3], "no gradient written when evaluating");
    // e = [-0.5, 0, 1]: loss 1.25, Σy 5.5, Σy² 10.25, Σe² 1.25, Σ|e| 1.5: exact in f32.
    assert_eq!(m, vec![1.25, 5.5, 10.25, 1.25, 1.5]);
}

#[test]
fn bad_shapes_are_errors() {
    let _serial = serial();
    let f = fixture();
    let b = upload(&f.gpu, &[0.0; 8]);
    let call = |rows, outputs| MseCall {
        rows,
        outputs,
        pred: (&b, 0),
        y: (&b, 0),
        dpred: None,
        scale: 1.0,
        metrics: (&b, 0),
    };
    for (rows, outputs, why) in
        [(0, 1, "no rows"), (2, 0, "no outputs"), (9, 1, "past the buffers"), (1, 2, "metrics slot of 9")]
    {
        assert!(f.kernels.mse.record(&f.gpu, &call(rows, outputs)).is_err(), "{why}");
    }
}
