//! Sigmoid cross-entropy over rows of logits, matching `shaders/sigmoid_xent.wgsl`: binary
//! classification (one output) and multi-label classification (one output per class), each
//! output an independent yes/no.
//!
//! The loss of one output with logit `z` and target `y` (0 or 1) is written in the stable form
//! `max(z, 0) - z y + log1p(exp(-|z|))` (TensorFlow's `sigmoid_cross_entropy_with_logits`,
//! PyTorch's `BCEWithLogitsLoss`): no `exp` of a large positive number and no `log` of a
//! probability that rounded to 0, so logits of ±100 give finite losses and gradients. The
//! gradient is `sigmoid(z) - y`, with `sigmoid` computed from `exp(-|z|)` for the same reason.
//! A row's loss is the mean over its outputs (Keras's `binary_crossentropy` reduces the last
//! axis by its mean); a batch reports the sum over rows, as the other losses do.

use crate::error::{Error, Result};

use super::{check_len, elements};

/// Task sums of one batch: the number of outputs (over every row) predicted right, where an
/// output is predicted positive when `z > 0` (`sigmoid(z) > 0.5`, Keras's `BinaryAccuracy`
/// threshold) and right when that agrees with `y > 0.5`.
pub const SIGMOID_SUMS: usize = 1;

/// `log(1 + t)` for `t` in `[0, 1]`, accurate where `1 + t` rounds: Goldberg's form
/// `log(u) t / (u - 1)` with `u = 1 + t` (the shader has no `log1p`, so the twin uses the
/// same form; `f32::ln_1p` would differ by an ULP or two).
#[inline]
pub(crate) fn log1p_small(t: f32) -> f32 {
    let u = 1.0 + t;
    if u == 1.0 {
        t
    } else {
        u.ln() * (t / (u - 1.0))
    }
}

/// `(loss, sigmoid(z))` of one output with target `y`, both from `exp(-|z|)`.
#[inline]
pub(crate) fn sigmoid_xent_one(z: f32, y: f32) -> (f32, f32) {
    let t = (-z.abs()).exp();
    let loss = z.max(0.0) - z * y + log1p_small(t);
    // sigmoid(z) = 1 / (1 + exp(-z)) for z >= 0, exp(z) / (1 + exp(z)) below.
    let s = if z >= 0.0 { 1.0 / (1.0 + t) } else { t / (1.0 + t) };
    (loss, s)
}

/// Loss sum and right-output count of a batch and, when `dz` is given, its gradient:
/// `z, y: [rows, outputs]` row-major, `y` each 0 or 1.
///
/// Returns `(Σ_r (1/outputs) Σ_j loss(z, y), right outputs)` and writes
/// `dz = (sigmoid(z) - y) * scale` where `scale = 1 / (global_rows * outputs)`, the gradient
/// of the mean over the whole (possibly split) batch. Wrong lengths or zero sizes are
/// [`Error::Shape`]; the targets' values are the data set's to check.
pub fn sigmoid_xent_into(
    z: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    mut dz: Option<&mut [f32]>,
) -> Result<(f32, u32)> {
    if outputs == 0 || y.is_empty() || !y.len().is_multiple_of(outputs) {
        return Err(Error::Shape(format!(
            "sigmoid cross-entropy needs targets [rows, {outputs}] with rows > 0, got {} values",
            y.len()
        )));
    }
    let n = elements("logits", y.len() / outputs, outputs)?;
    check_len("logits", z.len(), n)?;
    if let Some(d) = dz.as_deref() {
        check_len("dlogits", d.len(), n)?;
    }
    let (mut loss_sum, mut right) = (0.0f32, 0u32);
    for (r, (zr, yr)) in z.chunks_exact(outputs).zip(y.chunks_exact(outputs)).enumerate() {
        let mut row = 0.0f32;
        for j in 0..outputs {
            let (l, s) = sigmoid_xent_one(zr[j], yr[j]);
            row += l;
            right += u32::from((zr[j] > 0.0) == (yr[j] > 0.5));
            if let Some(d) = dz.as_deref_mut() {
                d[r * outputs + j] = (s - yr[j]) * scale;
            }
        }
        loss_sum += row / outputs as f32;
    }
    Ok((loss_sum, right))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss sum, gradient and right count in float64, from the definitions: the loss as
    /// `-(y ln p + (1 - y) ln(1 - p))` with `ln p = -ln(1 + e^-z)` and `ln(1 - p) = -z - ln(1 +
    /// e^-z)`, written with `ln_1p` on whichever side keeps the exponent negative.
    fn reference(z: &[f32], y: &[f32], outputs: usize, global: usize) -> (f64, Vec<f64>, u32) {
        let (mut loss, mut right) = (0.0f64, 0u32);
        let mut d = vec![0.0; z.len()];
        for i in 0..z.len() {
            let (z, y) = (z[i] as f64, y[i] as f64);
            // softplus(-z) = -ln p; softplus(z) = -ln(1 - p).
            let softplus = |x: f64| if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() };
            loss += (y * softplus(-z) + (1.0 - y) * softplus(z)) / outputs as f64;
            let p = 1.0 / (1.0 + (-z).exp());
            d[i] = (p - y) / (global * outputs) as f64;
            right += u32::from((p > 0.5) == (y == 1.0));
        }
        (loss, d, right)
    }

    fn lcg(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 40) as f64 / (1u64 << 24) as f64
            })
            .collect()
    }

    #[test]
    fn loss_gradient_and_count_match_a_float64_reference() {
        // Each row: rows, outputs, global rows, logit range (±100 tests the stable form).
        for (rows, outputs, global, range) in [
            (1, 1, 1, 4.0),
            (37, 3, 37, 8.0),
            (101, 1, 250, 100.0),
            (13, 7, 13, 100.0),
            (1757, 3, 1757, 30.0),
        ] {
            let z: Vec<f32> =
                lcg(rows * outputs, 1).iter().map(|u| ((u * 2.0 - 1.0) * range) as f32).collect();
            let y: Vec<f32> =
                lcg(rows * outputs, 2).iter().map(|&u| if u < 0.4 { 1.0 } else { 0.0 }).collect();
            let mut d = vec![0.0f32; rows * outputs];
            let scale = 1.0 / (global * outputs) as f32;
            let (loss, right) = sigmoid_xent_into(&z, &y, outputs, scale, Some(&mut d)).unwrap();
            let (want_loss, want_d, want_right) = reference(&z, &y, outputs, global);
            let u = f32::EPSILON as f64 / 2.0;
            // Each term's own error: max, product and difference exact or one rounding each
            // of terms no larger than |z|, log1p and exp a few ULP of a term below ln 2: within
            // 8 u (|z| + 1). The f32 sums of n terms add n u Σ|terms|.
            let terms: f64 = z.iter().map(|&z| z.abs() as f64 + 1.0).sum::<f64>() / outputs as f64;
            let tol = (rows + outputs + 8) as f64 * u * terms;
            assert!((loss as f64 - want_loss).abs() <= tol, "{rows}x{outputs}: loss {loss} vs {want_loss}");
            assert_eq!(right, want_right, "{rows}x{outputs}: right outputs");
            for (i, (&g, &w)) in d.iter().zip(&want_d).enumerate() {
                // sigmoid from exp (a few ULP) and a division, minus y (absolute error
                // u when it cancels), times scale: 8 u of the larger of sigmoid and y, scaled.
                let tol = 8.0 * u * (scale as f64) + 2.0 * u * w.abs();
                assert!((g as f64 - w).abs() <= tol, "{rows}x{outputs}: dz[{i}] {g} vs {w}");
            }
        }
    }

    #[test]
    fn extreme_logits_stay_finite_and_exact() {
        // z = ±100: sigmoid saturates, the loss is 100 on the wrong side and e^-100 on the right.
        let (z, y) = ([100.0f32, -100.0, 100.0, -100.0], [1.0f32, 0.0, 0.0, 1.0]);
        let mut d = [0.0f32; 4];
        let (loss, right) = sigmoid_xent_into(&z, &y, 1, 1.0, Some(&mut d)).unwrap();
        assert_eq!(right, 2, "the first two are right");
        assert!((loss - 200.0).abs() <= 200.0 * f32::EPSILON, "two wrong outputs at 100 each: {loss}");
        let t = (-100f32).exp();
        assert_eq!(d, [0.0, t / (1.0 + t), 1.0, t / (1.0 + t) - 1.0], "dz: saturated, not NaN");
        // The right side's loss is e^-100 (a subnormal f32), not 0: within two subnormal steps.
        let (l, _) = sigmoid_xent_one(100.0, 1.0);
        let step = f32::from_bits(1) as f64;
        assert!(l > 0.0 && (l as f64 - (-100f64).exp()).abs() <= 2.0 * step, "loss {l}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        let r = |z: &[f32], y: &[f32], o| sigmoid_xent_into(z, y, o, 1.0, None);
        assert!(matches!(r(&[1.0], &[], 1), Err(Error::Shape(_))), "no rows");
        assert!(matches!(r(&[1.0], &[1.0, 0.0], 1), Err(Error::Shape(_))), "logits short");
        assert!(matches!(r(&[1.0], &[1.0], 0), Err(Error::Shape(_))), "0 outputs");
        let mut short = [0.0; 1];
        let r = sigmoid_xent_into(&[1.0, 2.0], &[1.0, 0.0], 1, 1.0, Some(&mut short));
        assert!(matches!(r, Err(Error::Shape(_))), "dz short");
    }
}
