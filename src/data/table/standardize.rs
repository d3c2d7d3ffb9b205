//! [`Standardizer`]: per-column `(x - mean) / std`, Keras's `Normalization` layer and
//! scikit-learn's `StandardScaler`. Fitted on the training rows only, so that validation and
//! test rows are scaled with statistics they did not contribute to; saved with the model
//! (serde) to scale prediction inputs the same way, and usable on a regression target, whose
//! predictions [`Standardizer::invert`] brings back to the target's units.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Per-column mean and standard deviation, `[width]` each.
///
/// The standard deviation is the population one (divided by the row count, `ddof = 0`), as
/// Keras and scikit-learn compute it. A column that is constant on the fitted rows gets
/// `std = 1` (scikit-learn's rule, with its tolerance for rounding), so it becomes 0 rather
/// than NaN or a blown-up rounding error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean of each column over the fitted rows.
    pub mean: Vec<f32>,
    /// Standard deviation of each column over the fitted rows; positive and finite.
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `rows` of `data`, `[n, width]` row-major (a table's features, or a regression
    /// target with `width = schema.outputs()`). Sums run in f64, two passes (mean, then
    /// squared deviations), so large offsets do not swamp small spreads.
    ///
    /// [`Error::Shape`] for a zero width, data not a whole number of rows, or a row index out
    /// of range; [`Error::Data`] for no rows or a non-finite value.
    pub fn fit(data: &[f32], width: usize, rows: &[u32]) -> Result<Self> {
        let n = whole_rows(data.len(), width)?;
        if rows.is_empty() {
            return Err(Error::Data("no rows to fit the standardizer on; pass the training rows".into()));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= n) {
            return Err(Error::Shape(format!("standardizer row {bad} is out of range for {n} rows")));
        }
        let row = |r: u32| &data[r as usize * width..(r as usize + 1) * width];
        let mut sum = vec![0f64; width];
        for &r in rows {
            for (c, (s, &v)) in sum.iter_mut().zip(row(r)).enumerate() {
                if !v.is_finite() {
                    return Err(Error::Data(format!(
                        "row {r}, column {c} is {v}; standardize finite data only"
                    )));
                }
                *s += f64::from(v);
            }
        }
        let count = rows.len() as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mut squares = vec![0f64; width];
        for &r in rows {
            for ((q, &v), m) in squares.iter_mut().zip(row(r)).zip(&mean) {
                let d = f64::from(v) - m;
                *q += d * d;
            }
        }
        let std = squares
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let var = q / count;
                let std = var.sqrt() as f32;
                if is_constant(var, *m, count) || std == 0.0 {
                    1.0
                } else {
                    std
                }
            })
            .collect();
        Ok(Standardizer { mean: mean.iter().map(|&m| m as f32).collect(), std })
    }

    /// Columns: the width of the data it was fitted on.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Scales `data` (`[n, width]` row-major) in place: `(x - mean) / std`.
    /// [`Error::Shape`] if `data` is not whole rows, [`Error::Data`] if the standardizer is
    /// corrupt (lengths differ, a std not positive and finite).
    pub fn apply(&self, data: &mut [f32]) -> Result<()> {
        self.check(data.len())?;
        for row in data.chunks_exact_mut(self.width()) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
        Ok(())
    }

    /// Undoes [`Standardizer::apply`] in place: `x * std + mean`, e.g. on a regression
    /// model's predictions. Errors as [`Standardizer::apply`].
    pub fn invert(&self, data: &mut [f32]) -> Result<()> {
        self.check(data.len())?;
        for row in data.chunks_exact_mut(self.width()) {
            for ((x, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = *x * s + m;
            }
        }
        Ok(())
    }

    fn check(&self, len: usize) -> Result<()> {
        if self.mean.len() != self.std.len() {
            return Err(Error::Data(format!(
                "standardizer has {} means but {} standard deviations; refit it",
                self.mean.len(),
                self.std.len()
            )));
        }
        if let Some((c, s)) = self.std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Data(format!("standardizer std of column {c} is {s}; refit it")));
        }
        if let Some((c, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(Error::Data(format!("standardizer mean of column {c} is {m}; refit it")));
        }
        whole_rows(len, self.width()).map(|_| ())
    }
}

/// `len / width`, or [`Error::Shape`] when that is not a whole number of rows.
fn whole_rows(len: usize, width: usize) -> Result<usize> {
    if width == 0 || !len.is_multiple_of(width) {
        return Err(Error::Shape(format!("{len} values are not whole rows of width {width}")));
    }
    Ok(len / width)
}

/// scikit-learn's `_is_constant_feature`: the variance is within the rounding error that
/// computing it over `n` values with this mean can make.
fn is_constant(var: f64, mean: f64, n: f64) -> bool {
    let eps = f64::EPSILON;
    var <= n * eps * var + (n * mean.abs() * eps).powi(2)
}
