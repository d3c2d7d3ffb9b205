//! The mean absolute error and Huber's loss over rows of predictions, matching kinds 1 and 2
//! of `shaders/regression_loss.wgsl`: regression losses that grow linearly, not quadratically,
//! with large residuals, so outliers pull less.
//!
//! With `e = y_hat - y` per output, the loss of an output is `|e|` (MAE; gradient `sign(e)`,
//! 0 at `e = 0` as PyTorch's `L1Loss`) or Huber's `e^2 / 2` where `|e| <= delta` and
//! `delta (|e| - delta / 2)` beyond (PyTorch's `HuberLoss`, Keras's `Huber`; gradient
//! `clamp(e, -delta, delta)`). A row's loss is the mean over its outputs, a batch reports the
//! sum over rows, and the per-output sums are [`MSE_SUMS`]'s, so MAE, RMSE and R² come out of
//! `regression_metrics` exactly as for the mean squared error.

use crate::error::{Error, Result};

use super::{check_len, elements, MSE_SUMS};

/// Which robust loss: what one output's loss and gradient are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Robust {
    /// `|e|`, gradient `sign(e)` (0 at 0).
    Mae,
    /// Huber's loss with this `delta` (finite, positive).
    Huber(f32),
}

impl Robust {
    /// `(loss, dloss/de)` of one residual `e`.
    #[inline]
    pub(crate) fn one(self, e: f32) -> (f32, f32) {
        let a = e.abs();
        match self {
            Robust::Mae => {
                let sign = if e > 0.0 {
                    1.0
                } else if e < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                (a, sign)
            }
            Robust::Huber(delta) => {
                if a <= delta {
                    (0.5 * e * e, e)
                } else {
                    (delta * (a - 0.5 * delta), if e > 0.0 { delta } else { -delta })
                }
            }
        }
    }
}

/// Loss sum of a batch and, when `dpred` is given, its gradient: `pred, y: [rows, outputs]`
/// row-major, `sums: [MSE_SUMS * outputs]` overwritten with the batch's per-output sums
/// (layout on [`MSE_SUMS`]).
///
/// Returns `Σ_r (1/outputs) Σ_j loss(pred - y)` and writes `dpred = loss'(pred - y) * scale`
/// where `scale = 1 / (global_rows * outputs)`. Wrong lengths or zero sizes are
/// [`Error::Shape`]; a Huber `delta` that is not finite and positive is [`Error::Config`].
pub fn robust_into(
    kind: Robust,
    pred: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    sums: &mut [f32],
    mut dpred: Option<&mut [f32]>,
) -> Result<f32> {
    if let Robust::Huber(delta) = kind {
        if !(delta.is_finite() && delta > 0.0) {
            return Err(Error::Config(format!("Huber's delta must be finite and positive, got {delta}")));
        }
    }
    if outputs == 0 || y.is_empty() || !y.len().is_multiple_of(outputs) {
        return Err(Error::Shape(format!(
            "a regression loss needs targets [rows, {outputs}] with rows > 0, got {} values",
            y.len()
        )));
    }
    let n = elements("predictions", y.len() / outputs, outputs)?;
    check_len("predictions", pred.len(), n)?;
    check_len("regression sums", sums.len(), MSE_SUMS * outputs)?;
    if let Some(d) = dpred.as_deref() {
        check_len("dpred", d.len(), n)?;
    }
    sums.fill(0.0);
    let (sum_y, rest) = sums.split_at_mut(outputs);
    let (sum_y2, rest) = rest.split_at_mut(outputs);
    let (sum_sq, sum_abs) = rest.split_at_mut(outputs);
    let mut loss_sum = 0.0f32;
    for (r, (p, t)) in pred.chunks_exact(outputs).zip(y.chunks_exact(outputs)).enumerate() {
        let mut row = 0.0f32;
        for j in 0..outputs {
            let e = p[j] - t[j];
            let (l, g) = kind.one(e);
            row += l;
            sum_y[j] += t[j];
            sum_y2[j] += t[j] * t[j];
            sum_sq[j] += e * e;
            sum_abs[j] += e.abs();
            if let Some(d) = dpred.as_deref_mut() {
                d[r * outputs + j] = g * scale;
            }
        }
        loss_sum += row / outputs as f32;
    }
    Ok(loss_sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss sum and gradient in float64, from the definitions (Huber as PyTorch writes it).
    fn reference(kind: Robust, pred: &[f32], y: &[f32], outputs: usize, global: usize) -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let mut d = vec![0.0; pred.len()];
        for i in 0..pred.len() {
            let e = pred[i] as f64 - y[i] as f64;
            let (l, g) = match kind {
                Robust::Mae => (e.abs(), if e == 0.0 { 0.0 } else { e.signum() }),
                Robust::Huber(delta) => {
                    let delta = delta as f64;
                    if e.abs() <= delta {
                        (0.5 * e * e, e)
                    } else {
                        (delta * (e.abs() - 0.5 * delta), delta * e.signum())
                    }
                }
            };
            loss += l / outputs as f64;
            d[i] = g / (global * outputs) as f64;
        }
        (loss, d)
    }

    fn lcg(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn loss_and_gradient_match_a_float64_reference() {
        let u = f32::EPSILON as f64 / 2.0;
        for kind in [Robust::Mae, Robust::Huber(1.0), Robust::Huber(0.25), Robust::Huber(7.5)] {
            for (rows, outputs, global) in [(1, 1, 1), (37, 3, 37), (101, 1, 250), (1757, 3, 1757)] {
                let (mut pred, y) = (lcg(rows * outputs, 1, 5.0), lcg(rows * outputs, 2, 3.0));
                // Some residuals exactly 0 (MAE's subgradient) and exactly delta (Huber's seam).
                pred[0] = y[0];
                if let (Robust::Huber(delta), true) = (kind, pred.len() > 1) {
                    pred[1] = y[1] + delta;
                }
                let mut sums = vec![0.0f32; MSE_SUMS * outputs];
                let mut d = vec![0.0f32; rows * outputs];
                let scale = 1.0 / (global * outputs) as f32;
                let loss = robust_into(kind, &pred, &y, outputs, scale, &mut sums, Some(&mut d)).unwrap();
                let (want_loss, want_d) = reference(kind, &pred, &y, outputs, global);
                // e carries u |e|, each loss term then a few roundings of terms within
                // |e| (|e| + delta): 4 u (|e| + 1)², and the f32 sums n u Σ|terms|.
                let terms: f64 =
                    pred.iter().zip(&y).map(|(&p, &t)| ((p - t).abs() as f64 + 8.0).powi(2)).sum::<f64>()
                        / outputs as f64;
                let tol = (rows + outputs + 4) as f64 * u * terms;
                let what = format!("{kind:?} {rows}x{outputs}");
                assert!((loss as f64 - want_loss).abs() <= tol, "{what}: loss {loss} vs {want_loss}");
                for (i, (&g, &w)) in d.iter().zip(&want_d).enumerate() {
                    // sign(e) exact; clamp(e) carries e's rounding; times scale: 3 u |ref|.
                    assert!((g as f64 - w).abs() <= 3.0 * u * w.abs(), "{what}: dpred[{i}] {g} vs {w}");
                }
                assert_eq!(d[0], 0.0, "{what}: e = 0 has gradient 0 (Huber: e; MAE: sign(0) = 0)");
            }
        }
    }

    #[test]
    fn the_sums_are_those_of_the_mean_squared_error() {
        let (pred, y) = (lcg(21, 3, 4.0), lcg(21, 4, 2.0));
        let (mut a, mut b) = (vec![0.0f32; MSE_SUMS * 3], vec![0.0f32; MSE_SUMS * 3]);
        robust_into(Robust::huber_default(), &pred, &y, 3, 1.0, &mut a, None).unwrap();
        super::super::mse_into(&pred, &y, 3, 1.0, &mut b, None).unwrap();
        assert_eq!(a, b, "Σy, Σy², Σe², Σ|e| in the same order, so the same bits");
    }

    #[test]
    fn bad_shapes_and_deltas_are_errors() {
        let mut sums = [0.0; 4];
        let mae = |p: &[f32], y: &[f32], o, s: &mut [f32]| robust_into(Robust::Mae, p, y, o, 1.0, s, None);
        assert!(matches!(mae(&[1.0], &[], 1, &mut sums), Err(Error::Shape(_))), "no rows");
        assert!(matches!(mae(&[1.0], &[1.0, 2.0], 1, &mut sums), Err(Error::Shape(_))), "pred short");
        assert!(matches!(mae(&[1.0], &[1.0], 0, &mut sums), Err(Error::Shape(_))), "0 outputs");
        assert!(matches!(mae(&[1.0], &[1.0], 1, &mut [0.0; 3]), Err(Error::Shape(_))), "sums short");
        for delta in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let r = robust_into(Robust::Huber(delta), &[1.0], &[1.0], 1, 1.0, &mut sums, None);
            assert!(matches!(r, Err(Error::Config(_))), "delta {delta}");
        }
    }

    impl Robust {
        fn huber_default() -> Self {
            Robust::Huber(crate::spec::DEFAULT_HUBER_DELTA)
        }
    }
}
