//! Mean squared error over rows of predictions, with the per-output sums its metrics (MAE,
//! RMSE, R²) are computed from once a pass is over.
//!
//! The loss of a row is the mean over its outputs of `(y_hat - y)^2`; a batch reports the sum
//! over its rows, like the softmax cross-entropy, so that a pass's mean loss is that sum over
//! the rows visited. R² needs each output's `Σy` and `Σy²` as well as its squared residuals:
//! they are summed here per batch, in f32 and row order, and over the pass in f64 by the caller.

use crate::error::{Error, Result};

use super::{check_len, elements};

/// The per-output sums of one batch, in this order, each `[outputs]`: `Σy`, `Σy²`,
/// `Σ(y_hat - y)²`, `Σ|y_hat - y|`. Hence `4 * outputs` floats.
pub const MSE_SUMS: usize = 4;

/// Loss sum of a batch and, when `dpred` is given, its gradient: `pred, y: [rows, outputs]`
/// row-major, `sums: [MSE_SUMS * outputs]` overwritten with the batch's sums (layout on
/// [`MSE_SUMS`]).
///
/// Returns `Σ_r (1/outputs) Σ_j (pred - y)²`, and writes `dpred = 2 (pred - y) * scale`
/// where `scale = 1 / (global_rows * outputs)`, the gradient of the mean over the whole
/// (possibly split) batch. Wrong lengths or zero sizes are [`Error::Shape`].
pub fn mse_into(
    pred: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    sums: &mut [f32],
    mut dpred: Option<&mut [f32]>,
) -> Result<f32> {
    if outputs == 0 || y.is_empty() || !y.len().is_multiple_of(outputs) {
        return Err(Error::Shape(format!(
            "mean squared error needs targets [rows, {outputs}] with rows > 0, got {} values",
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
            row += e * e;
            sum_y[j] += t[j];
            sum_y2[j] += t[j] * t[j];
            sum_sq[j] += e * e;
            sum_abs[j] += e.abs();
            if let Some(d) = dpred.as_deref_mut() {
                d[r * outputs + j] = 2.0 * e * scale;
            }
        }
        loss_sum += row / outputs as f32;
    }
    Ok(loss_sum)
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
    fn loss_gradient_and_sums_match_a_float64_reference() {
        // Each row: rows, outputs, global rows (a replica's share scales by the whole batch).
        for (rows, outputs, global) in [(1, 1, 1), (37, 3, 37), (101, 1, 250), (13, 7, 13)] {
            let (pred, y) = (lcg(rows * outputs, 1), lcg(rows * outputs, 2));
            let mut sums = vec![0.0f32; MSE_SUMS * outputs];
            let mut d = vec![0.0f32; rows * outputs];
            let scale = 1.0 / (global * outputs) as f32;
            let loss = mse_into(&pred, &y, outputs, scale, &mut sums, Some(&mut d)).unwrap();
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

    #[test]
    fn bad_shapes_are_errors() {
        let mut sums = [0.0; 4];
        assert!(matches!(mse_into(&[1.0], &[], 1, 1.0, &mut sums, None), Err(Error::Shape(_))), "no rows");
        assert!(
            matches!(mse_into(&[1.0], &[1.0, 2.0], 1, 1.0, &mut sums, None), Err(Error::Shape(_))),
            "pred short"
        );
        assert!(
            matches!(mse_into(&[1.0], &[1.0], 0, 1.0, &mut sums, None), Err(Error::Shape(_))),
            "0 outputs"
        );
        let mut short = [0.0; 3];
        assert!(
            matches!(mse_into(&[1.0], &[1.0], 1, 1.0, &mut short, None), Err(Error::Shape(_))),
            "sums short"
        );
    }
}
