//! Splitting a global batch across replicas: shares proportional to a weight per replica
//! (equal by default, or measured speeds), by largest remainder, so the shares always sum to
//! the batch: no sample dropped or counted twice.

use crate::error::{Error, Result};

/// Rows per replica for a batch of `rows`, proportional to `weights`.
/// Ties in the remainders go to the lower replica index, so the split is deterministic.
pub fn split_rows(rows: usize, weights: &[f64]) -> Result<Vec<usize>> {
    if weights.is_empty() {
        return Err(Error::Config("no replicas to split a batch across".into()));
    }
    if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
        return Err(Error::Config(format!("replica weights must be finite and > 0, got {weights:?}")));
    }
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| rows as f64 * w / total).collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = rows - shares.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b))
    });
    for &r in order.iter().cycle() {
        if left == 0 {
            break;
        }
        shares[r] += 1;
        left -= 1;
    }
    Ok(shares)
}

/// Start offsets of each share within the batch (prefix sums).
pub fn offsets(shares: &[usize]) -> Vec<usize> {
    shares
        .iter()
        .scan(0, |acc, &s| {
            let start = *acc;
            *acc += s;
            Some(start)
        })
        .collect()
}
