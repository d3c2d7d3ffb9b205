//! Sigmoid cross-entropy against the CPU twin (`crate::cpu::sigmoid_xent_into`) on lavapipe:
//! the gradient, the loss sum and the right-output count at awkward shapes (one row; more
//! rows than the workgroup's 256 invocations; 1757 rows of 3 outputs; logits of ±100),
//! accumulated over two launches, reading f32 multi-hot targets or u32 binary labels.
//!
//! Tolerances (module header of `common.rs`): `sigmoid(z)` comes from `exp` (RTOL relative)
//! and a division (a few ULP), so `sigmoid - y` is within `(RTOL + 8 u)` of 1 absolute, times
//! `scale`, plus the final product's `2 u |ref|`. A loss term `max(z, 0) - z y + log1p(e)`
//! carries `4 u (|z| + 1)` from its roundings, RTOL relative from `exp` and `log`, and up to
//! `EPS_ONE` absolute from `log` near 1 (Vulkan bounds `log` on [0.5, 2] absolutely, by
//! 2^-21); the sums of n terms add `n u Σ|terms|` per backend. The right count compares
//! `z > 0` on identical logits: exact.

use super::common::*;
use super::*;
use crate::cpu;
use crate::gpu::kernels::{submit, SigmoidTargets, SigmoidXentCall, SIGMOID_SLOT_LEN};

/// Runs one launch `times` times with the metrics slot at float 2 of a sentinel-padded
/// buffer, the targets as f32 or (`labels`) as u32: `(metrics slot, dlogits)`.
fn run_sigmoid(
    z: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    labels: bool,
    times: usize,
) -> (Vec<f32>, Vec<f32>) {
    let f = fixture();
    let n = y.len();
    let zb = upload(&f.gpu, &padded(z, 3));
    let yb = if labels {
        upload_u32(&f.gpu, &[[7u32].as_slice(), &y.iter().map(|&v| v as u32).collect::<Vec<_>>()].concat())
    } else {
        upload(&f.gpu, &padded(y, 1))
    };
    let targets = if labels { SigmoidTargets::Labels(&yb, 1) } else { SigmoidTargets::Values(&yb, 1) };
    let metrics = upload(&f.gpu, &padded(&[0.0; SIGMOID_SLOT_LEN], 2));
    let db = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let call = SigmoidXentCall {
        rows: n / outputs,
        outputs,
        logits: (&zb, 3),
        targets,
        dlogits: Some((&db, 2)),
        scale,
        metrics: (&metrics, 2),
    };
    let d = f.kernels.sigmoid_xent.record(&f.gpu, &call).expect("record");
    for _ in 0..times {
        submit(&f.gpu, &[&d]);
    }
    let (m, pad) = split_padded(&read(&f.gpu, &metrics, SIGMOID_SLOT_LEN + 4), 2);
    assert_untouched("metrics around the slot", &pad);
    let (dz, pad) = split_padded(&read(&f.gpu, &db, n + 4), 2);
    assert_untouched("dlogits", &pad);
    (m, dz)
}

/// Logits in [-range, range) with every fifth at exactly ±100, and targets with about 40 %
/// ones.
fn problem(n: usize, seed: u64, range: f32) -> (Vec<f32>, Vec<f32>) {
    let mut z: Vec<f32> = random(n, seed).iter().map(|v| v * range).collect();
    for (i, v) in z.iter_mut().enumerate().step_by(5) {
        *v = if i % 2 == 0 { 100.0 } else { -100.0 };
    }
    let y = random(n, seed + 1).iter().map(|&v| if v < -0.2 { 1.0 } else { 0.0 }).collect();
    (z, y)
}

fn check(rows: usize, outputs: usize, range: f32, labels: bool) {
    let n = rows * outputs;
    let (z, y) = problem(n, (rows * 10 + outputs) as u64, range);
    let scale = 1.0 / n as f32;
    let mut want_d = vec![0.0f32; n];
    let (loss, right) = cpu::sigmoid_xent_into(&z, &y, outputs, scale, Some(&mut want_d)).unwrap();
    let (m, dz) = run_sigmoid(&z, &y, outputs, scale, labels, 2);
    let name = format!("rows={rows} outputs={outputs} range={range} labels={labels}");
    let grad_tol = |i: usize| (RTOL + 8.0 * U) * scale as f64 + 2.0 * U * (want_d[i] as f64).abs();
    assert_close(&format!("{name} dlogits"), &dz, &want_d, grad_tol);
    assert_eq!(m[1], 2.0 * right as f32, "{name}: right outputs over two launches");
    // Σ|terms| of the loss sum in f64, and each term's own error (module header).
    let terms: f64 = z.iter().map(|&z| z.abs() as f64 + 1.0).sum::<f64>() / outputs as f64;
    let own = (RTOL + 8.0 * U) * terms + rows as f64 * EPS_ONE;
    let bound = 2.0 * (own + 2.0 * (rows + outputs + 2) as f64 * U * terms) + FLUSH;
    assert_close(&format!("{name} loss sum"), &m[..1], &[2.0 * loss], |_| bound);
}

#[test]
fn sigmoid_xent_matches_the_cpu_on_multi_hot_targets() {
    let _serial = serial();
    for &rows in &[1usize, 7, 257, 1757] {
        for &outputs in &[1usize, 3, 5] {
            for range in [4.0, 100.0] {
                check(rows, outputs, range, false);
            }
        }
    }
}

#[test]
fn sigmoid_xent_matches_the_cpu_on_binary_labels() {
    let _serial = serial();
    for &rows in &[1usize, 7, 257, 1757] {
        check(rows, 1, 30.0, true);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let _serial = serial();
    let f = fixture();
    let b = upload(&f.gpu, &[0.0; 8]);
    let call = |rows, outputs, targets| SigmoidXentCall {
        rows,
        outputs,
        logits: (&b, 0),
        targets,
        dlogits: None,
        scale: 1.0,
        metrics: (&b, 0),
    };
    let values = SigmoidTargets::Values(&b, 0);
    let labels = SigmoidTargets::Labels(&b, 0);
    for (rows, outputs, targets, why) in [
        (0, 1, values, "no rows"),
        (2, 0, values, "no outputs"),
        (9, 1, values, "past the buffers"),
        (2, 2, labels, "labels need one output"),
        (8, 1, SigmoidTargets::Labels(&b, 1), "labels past the buffer"),
    ] {
        assert!(f.kernels.sigmoid_xent.record(&f.gpu, &call(rows, outputs, targets)).is_err(), "{why}");
    }
}
