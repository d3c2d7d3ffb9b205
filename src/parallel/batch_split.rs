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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rows_table() {
        // (rows, weights, expected shares, why)
        let rows: &[(usize, &[f64], &[usize], &str)] = &[
            (128, &[1.0, 1.0], &[64, 64], "equal weights split evenly"),
            (7, &[1.0, 1.0], &[4, 3], "the odd row goes to the first replica (tie broken by index)"),
            (5, &[1.0, 1.0, 1.0, 1.0], &[2, 1, 1, 1], "remainder 1 of 4 to replica 0"),
            (1, &[1.0, 1.0], &[1, 0], "a one-row tail: one replica gets nothing"),
            (0, &[1.0, 1.0], &[0, 0], "empty batch"),
            (100, &[3.0, 1.0], &[75, 25], "shares follow speed"),
            (10, &[2.0, 1.0], &[7, 3], "6.67 / 3.33: the larger remainder (replica 0) gets the row"),
            (96, &[1.0], &[96], "one replica takes all"),
        ];
        for &(n, w, want, why) in rows {
            let got = split_rows(n, w).expect(why);
            assert_eq!(got, want, "{why}");
            assert_eq!(got.iter().sum::<usize>(), n, "{why}: no row dropped or doubled");
        }
        assert!(split_rows(10, &[]).is_err(), "no replicas is an error");
        assert!(split_rows(10, &[1.0, 0.0]).is_err(), "a zero weight is an error");
        assert!(split_rows(10, &[1.0, f64::NAN]).is_err(), "a NaN weight is an error");
        assert_eq!(offsets(&[4, 3, 0, 2]), vec![0, 4, 7, 7]);
    }
}
