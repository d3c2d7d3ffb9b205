//! The regression losses over rows of predictions, the CPU twin of
//! `shaders/regression_loss.wgsl`: the mean squared error, the mean absolute error and
//! Huber's loss, with the per-output sums their metrics (MAE, RMSE, R²) are computed from once
//! a pass is over.
//!
//! With `e = y_hat - y` per output, the loss of an output is `e^2` (gradient `2 e`), `|e|`
//! (gradient `sign(e)`, 0 at `e = 0` as PyTorch's `L1Loss`) or Huber's `e^2 / 2` where
//! `|e| <= delta` and `delta (|e| - delta / 2)` beyond (PyTorch's `HuberLoss`, Keras's
//! `Huber`; gradient `clamp(e, -delta, delta)`). The loss of a row is the mean over its
//! outputs; a batch reports the sum over its rows, like the softmax cross-entropy, so that a
//! pass's mean loss is that sum over the rows visited. R² needs each output's `Σy` and `Σy²`
//! as well as its squared residuals: they are summed here per batch, in f32 and row order,
//! whatever the loss, and over the pass in f64 by the caller.

use crate::error::{Error, Result};

use super::{check_len, elements};

/// The per-output sums of one batch, in this order, each `[outputs]`: `Σy`, `Σy²`,
/// `Σ(y_hat - y)²`, `Σ|y_hat - y|`. Hence `4 * outputs` floats, for every regression loss.
pub const MSE_SUMS: usize = 4;

/// Which regression loss: what one output's loss and gradient are. The GPU kernel takes the
/// same kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RegressionKind {
    /// The mean squared error: `e^2`, gradient `2 e`.
    Mse,
    /// The mean absolute error: `|e|`, gradient `sign(e)` (0 at 0).
    Mae,
    /// Huber's loss with this `delta` (finite, positive).
    Huber(f32),
}

impl RegressionKind {
    /// `Ok` unless this is Huber's loss with a `delta` that is not finite and positive
    /// ([`Error::Config`]).
    pub fn check(self) -> Result<()> {
        match self {
            RegressionKind::Huber(delta) if !(delta.is_finite() && delta > 0.0) => {
                Err(Error::Config(format!("Huber's delta must be finite and positive, got {delta}")))
            }
            _ => Ok(()),
        }
    }

    /// `(loss, dloss/de)` of one residual `e`.
    #[inline]
    fn one(self, e: f32) -> (f32, f32) {
        let a = e.abs();
        match self {
            RegressionKind::Mse => (e * e, 2.0 * e),
            RegressionKind::Mae => {
                let sign = if e > 0.0 {
                    1.0
                } else if e < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                (a, sign)
            }
            RegressionKind::Huber(delta) => {
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
/// where `scale = 1 / (global_rows * outputs)`, the gradient of the mean over the whole
/// (possibly split) batch. Wrong lengths or zero sizes are [`Error::Shape`]; a Huber `delta`
/// that is not finite and positive is [`Error::Config`].
pub fn regression_into(
    kind: RegressionKind,
    pred: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    sums: &mut [f32],
    dpred: Option<&mut [f32]>,
) -> Result<f32> {
    kind.check()?;
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
    // One loop per kind, the kind's arithmetic inlined into it.
    Ok(match kind {
        RegressionKind::Mse => {
            rows_into(pred, y, outputs, scale, sums, dpred, |e| RegressionKind::Mse.one(e))
        }
        RegressionKind::Mae => {
            rows_into(pred, y, outputs, scale, sums, dpred, |e| RegressionKind::Mae.one(e))
        }
        RegressionKind::Huber(d) => {
            rows_into(pred, y, outputs, scale, sums, dpred, |e| RegressionKind::Huber(d).one(e))
        }
    })
}

/// [`regression_into`]'s loop over checked operands, `one` giving an output's loss and
/// gradient.
fn rows_into(
    pred: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    sums: &mut [f32],
    mut dpred: Option<&mut [f32]>,
    one: impl Fn(f32) -> (f32, f32),
) -> f32 {
    sums.fill(0.0);
    let (sum_y, rest) = sums.split_at_mut(outputs);
    let (sum_y2, rest) = rest.split_at_mut(outputs);
    let (sum_sq, sum_abs) = rest.split_at_mut(outputs);
    let mut loss_sum = 0.0f32;
    for (r, (p, t)) in pred.chunks_exact(outputs).zip(y.chunks_exact(outputs)).enumerate() {
        let mut row = 0.0f32;
        for j in 0..outputs {
            let e = p[j] - t[j];
            let (l, g) = one(e);
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
    loss_sum
}

/// `(mae, rmse, r2)` of a pass from its summed [`MSE_SUMS`] sums over `rows` rows.
///
/// R² is Keras's `R2Score(class_aggregation="uniform_average")`: per output
/// `1 - SS_res / SS_tot` with `SS_tot = Σy² - (Σy)² / rows`, averaged over outputs; an output
/// whose targets do not vary (`SS_tot = 0`) scores 0, as Keras turns the infinite ratio to 0.
/// An empty pass gives zeros.
pub fn regression_metrics(sums: &[f64], rows: usize) -> (f32, f32, f32) {
    let outputs = sums.len() / MSE_SUMS;
    if outputs == 0 || rows == 0 {
        return (0.0, 0.0, 0.0);
    }
    let n = rows as f64;
    let (sum_y, rest) = sums.split_at(outputs);
    let (sum_y2, rest) = rest.split_at(outputs);
    let (sum_sq, sum_abs) = rest.split_at(outputs);
    let cells = n * outputs as f64;
    let mae = sum_abs.iter().sum::<f64>() / cells;
    let rmse = (sum_sq.iter().sum::<f64>() / cells).sqrt();
    let r2 = (0..outputs)
        .map(|j| {
            let ss_tot = sum_y2[j] - sum_y[j] * sum_y[j] / n;
            if ss_tot > 0.0 {
                1.0 - sum_sq[j] / ss_tot
            } else {
                0.0
            }
        })
        .sum::<f64>()
        / outputs as f64;
    (mae as f32, rmse as f32, r2 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loss sum, gradient and sums in float64, from the definitions.
    fn reference(pred: &[f32], y: &[f32], outputs: usize, global_rows: usize) -> (f64, Vec<f64>, Vec<f64>) {
        let mut sums = vec![0.0f64; MSE_SUMS * outputs];
        let mut loss = 0.0;
        let mut d = vec![0.0; pred.len()];
        for i in 0..pred.len() {
            let (p, t, j) = (pred[i] as f64, y[i] as f64, i % outputs);
            let e = p - t;
            loss += e * e / outputs as f64;
            d[i] = 2.0 * e / (global_rows * outputs) as f64;
            sums[j] += t;
            sums[outputs + j] += t * t;
            sums[2 * outputs + j] += e * e;
            sums[3 * outputs + j] += e.abs();
        }
        (loss, d, sums)
    }

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn mse_loss_gradient_and_sums_match_a_float64_reference() {
        // Each row: rows, outputs, global rows (a replica's share scales by the whole batch).
        for (rows, outputs, global) in [(1, 1, 1), (37, 3, 37), (101, 1, 250), (13, 7, 13)] {
            let (pred, y) = (lcg(rows * outputs, 1), lcg(rows * outputs, 2));
            let mut sums = vec![0.0f32; MSE_SUMS * outputs];
            let mut d = vec![0.0f32; rows * outputs];
            let scale = 1.0 / (global * outputs) as f32;
            let loss =
                regression_into(RegressionKind::Mse, &pred, &y, outputs, scale, &mut sums, Some(&mut d))
                    .unwrap();
            let (want_loss, want_d, want_sums) = reference(&pred, &y, outputs, global);
            // f32 sums of n non-negative or signed terms: within n u Σ|terms|.
            let n = rows as f64;
            let u = f32::EPSILON as f64 / 2.0;
            let abs: f64 = pred.iter().zip(&y).map(|(&p, &t)| ((p - t) as f64).powi(2)).sum::<f64>();
            let tol = (n + 2.0) * u * abs;
            assert!((loss as f64 - want_loss).abs() <= tol, "{rows}x{outputs}: loss {loss} vs {want_loss}");
            for (i, (&g, &w)) in d.iter().zip(&want_d).enumerate() {
                assert!(
                    (g as f64 - w).abs() <= 4.0 * u * w.abs() + 1e-30,
                    "{rows}x{outputs}: dpred[{i}] {g} vs {w}"
                );
            }
            for (k, (&s, &w)) in sums.iter().zip(&want_sums).enumerate() {
                let j = k % outputs;
                let terms: f64 = match k / outputs {
                    0 => y.iter().skip(j).step_by(outputs).map(|t| (*t as f64).abs()).sum(),
                    1 => y.iter().skip(j).step_by(outputs).map(|t| (*t as f64).powi(2)).sum(),
                    _ => w.abs(),
                };
                assert!(
                    (s as f64 - w).abs() <= (n + 2.0) * u * terms,
                    "{rows}x{outputs}: sums[{k}] {s} vs {w}"
                );
            }
        }
    }

    #[test]
    fn metrics_follow_their_definitions() {
        // y = [1, 2, 3, 4], pred = [1, 2, 3, 5]: residuals 0, 0, 0, 1.
        let sums = [10.0, 30.0, 1.0, 1.0];
        let (mae, rmse, r2) = regression_metrics(&sums, 4);
        assert_eq!((mae, rmse), (0.25, 0.5), "mean |e| = 1/4, sqrt(mean e²) = 1/2");
        assert!((r2 - 0.8).abs() < 1e-6, "1 - 1 / (30 - 100/4) = 0.8, got {r2}");
        assert_eq!(regression_metrics(&[6.0, 12.0, 2.0, 2.0], 3).2, 0.0, "constant targets score 0");
        assert_eq!(regression_metrics(&[], 0), (0.0, 0.0, 0.0), "an empty pass");
    }

    /// MAE's and Huber's loss sum and gradient in float64, from the definitions (Huber as
    /// PyTorch writes it).
    fn robust_reference(
        kind: RegressionKind,
        pred: &[f32],
        y: &[f32],
        outputs: usize,
        global: usize,
    ) -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let mut d = vec![0.0; pred.len()];
        for i in 0..pred.len() {
            let e = pred[i] as f64 - y[i] as f64;
            let (l, g) = match kind {
                RegressionKind::Mse => unreachable!("the MSE has its own reference"),
                RegressionKind::Mae => (e.abs(), if e == 0.0 { 0.0 } else { e.signum() }),
                RegressionKind::Huber(delta) => {
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

    #[test]
    fn mae_and_huber_match_a_float64_reference() {
        let u = f32::EPSILON as f64 / 2.0;
        let kinds = [
            RegressionKind::Mae,
            RegressionKind::Huber(1.0),
            RegressionKind::Huber(0.25),
            RegressionKind::Huber(7.5),
        ];
        for kind in kinds {
            for (rows, outputs, global) in [(1, 1, 1), (37, 3, 37), (101, 1, 250), (1757, 3, 1757)] {
                let n = rows * outputs;
                let mut pred: Vec<f32> = lcg(n, 1).iter().map(|v| v * 2.5).collect();
                let y: Vec<f32> = lcg(n, 2).iter().map(|v| v * 1.5).collect();
                // Some residuals exactly 0 (MAE's subgradient) and exactly delta (Huber's seam).
                pred[0] = y[0];
                if let (RegressionKind::Huber(delta), true) = (kind, n > 1) {
                    pred[1] = y[1] + delta;
                }
                let mut sums = vec![0.0f32; MSE_SUMS * outputs];
                let mut d = vec![0.0f32; n];
                let scale = 1.0 / (global * outputs) as f32;
                let loss = regression_into(kind, &pred, &y, outputs, scale, &mut sums, Some(&mut d)).unwrap();
                let (want_loss, want_d) = robust_reference(kind, &pred, &y, outputs, global);
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
    fn the_sums_do_not_depend_on_the_loss() {
        let (pred, y) = (lcg(21, 3), lcg(21, 4));
        let sums = |kind| {
            let mut s = vec![0.0f32; MSE_SUMS * 3];
            regression_into(kind, &pred, &y, 3, 1.0, &mut s, None).unwrap();
            s
        };
        let mse = sums(RegressionKind::Mse);
        for kind in [RegressionKind::Mae, RegressionKind::Huber(crate::spec::DEFAULT_HUBER_DELTA)] {
            assert_eq!(sums(kind), mse, "{kind:?}: Σy, Σy², Σe², Σ|e| in the same order, so the same bits");
        }
    }

    #[test]
    fn bad_shapes_and_deltas_are_errors() {
        let mut sums = [0.0; 4];
        for kind in [RegressionKind::Mse, RegressionKind::Mae, RegressionKind::Huber(1.0)] {
            let run = |p: &[f32], y: &[f32], o, s: &mut [f32]| regression_into(kind, p, y, o, 1.0, s, None);
            assert!(matches!(run(&[1.0], &[], 1, &mut sums), Err(Error::Shape(_))), "{kind:?}: no rows");
            assert!(
                matches!(run(&[1.0], &[1.0, 2.0], 1, &mut sums), Err(Error::Shape(_))),
                "{kind:?}: pred short"
            );
            assert!(matches!(run(&[1.0], &[1.0], 0, &mut sums), Err(Error::Shape(_))), "{kind:?}: 0 outputs");
            assert!(
                matches!(run(&[1.0], &[1.0], 1, &mut [0.0; 3]), Err(Error::Shape(_))),
                "{kind:?}: sums short"
            );
        }
        for delta in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let r = regression_into(RegressionKind::Huber(delta), &[1.0], &[1.0], 1, 1.0, &mut sums, None);
            assert!(matches!(r, Err(Error::Config(_))), "delta {delta}");
        }
    }
}
