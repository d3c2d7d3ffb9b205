//! The standardizer against a float64 reference computed here by another method (Welford's
//! one-pass update), on columns chosen to break a careless f32 version: a large offset with a
//! small spread, a constant, and rows outside the fitted set holding values far off.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use wgtrain::data::Standardizer;
use wgtrain::Error;

const WIDTH: usize = 4;
const ROWS: usize = 1001;

/// `[ROWS, WIDTH]`: 10,000 + U(0, 1); the constant 3.7; U(-1, 1), but 1e6 on unfitted rows;
/// small integers.
fn data() -> Vec<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    let mut out = Vec::with_capacity(ROWS * WIDTH);
    for r in 0..ROWS {
        let wild = if fitted(r) { rng.random_range(-1.0..1.0) } else { 1e6 };
        out.extend([10_000.0 + rng.random::<f32>(), 3.7, wild, rng.random_range(0..5) as f32]);
    }
    out
}

fn fitted(r: usize) -> bool {
    !r.is_multiple_of(3)
}

/// Welford's mean and population standard deviation of column `c` over the fitted rows.
fn welford(data: &[f32], c: usize) -> (f64, f64) {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for r in (0..ROWS).filter(|&r| fitted(r)) {
        let x = f64::from(data[r * WIDTH + c]);
        n += 1.0;
        let delta = x - mean;
        mean += delta / n;
        m2 += delta * (x - mean);
    }
    (mean, (m2 / n).sqrt())
}

fn close(got: f64, want: f64, rtol: f64) -> bool {
    (got - want).abs() <= rtol * want.abs().max(1e-12)
}

#[test]
fn fit_matches_a_float64_reference_on_the_fitted_rows_only() {
    let data = data();
    let rows: Vec<u32> = (0..ROWS as u32).filter(|&r| fitted(r as usize)).collect();
    let s = Standardizer::fit(&data, WIDTH, &rows).unwrap();
    assert_eq!(s.width(), WIDTH);
    for c in 0..WIDTH {
        let (mean, std) = welford(&data, c);
        assert!(close(s.mean[c] as f64, mean, 1e-6), "column {c}: mean {} vs {mean}", s.mean[c]);
        if c == 1 {
            assert_eq!(s.std[c], 1.0, "the constant column gets std 1");
        } else {
            assert!(close(s.std[c] as f64, std, 1e-5), "column {c}: std {} vs {std}", s.std[c]);
        }
    }
    assert!(s.mean[2].abs() < 0.1, "unfitted rows (1e6) stay out of the mean: {}", s.mean[2]);
}

#[test]
fn apply_centres_and_scales_and_invert_undoes_it() {
    let original = data();
    let rows: Vec<u32> = (0..ROWS as u32).filter(|&r| fitted(r as usize)).collect();
    let s = Standardizer::fit(&original, WIDTH, &rows).unwrap();
    let mut scaled = original.clone();
    s.apply(&mut scaled).unwrap();
    for c in 0..WIDTH {
        let column: Vec<f64> = rows.iter().map(|&r| f64::from(scaled[r as usize * WIDTH + c])).collect();
        let mean = column.iter().sum::<f64>() / column.len() as f64;
        let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / column.len() as f64;
        // The mean is kept as an f32: 10,000.5 is only held to half an ulp (0.0005), which is
        // 0.0017 of this column's std. The tolerance is that rounding, derived, plus a margin.
        let ulp = f64::from(s.mean[c].abs()) * f64::from(f32::EPSILON);
        let tolerance = 1e-4 + ulp / f64::from(s.std[c]);
        assert!(mean.abs() < tolerance, "column {c}: scaled mean {mean}, tolerance {tolerance}");
        let want_var = if c == 1 { 0.0 } else { 1.0 };
        assert!((var - want_var).abs() < 1e-3, "column {c}: scaled variance {var}, want {want_var}");
    }
    assert!(rows.iter().all(|&r| scaled[r as usize * WIDTH + 1] == 0.0), "a constant column becomes 0");
    s.invert(&mut scaled).unwrap();
    for (i, (&back, &was)) in scaled.iter().zip(&original).enumerate() {
        assert!(
            close(back as f64, was as f64, 1e-5) || (back - was).abs() < 1e-5,
            "value {i}: {back} vs {was}"
        );
    }
}

#[test]
fn its_json_is_the_same_bytes_every_run() {
    let data = data();
    let rows: Vec<u32> = (0..ROWS as u32).collect();
    let json: Vec<String> = (0..2)
        .map(|_| serde_json::to_string(&Standardizer::fit(&data, WIDTH, &rows).unwrap()).unwrap())
        .collect();
    assert_eq!(json[0], json[1]);
    let back: Standardizer = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(back, Standardizer::fit(&data, WIDTH, &rows).unwrap(), "f32s survive JSON exactly");
}

#[test]
fn bad_input_is_an_error_that_says_what_is_wrong() {
    let ok = [1.0, 2.0, 3.0, 4.0];
    let cases: [(&[f32], usize, &[u32], &str); 5] = [
        (&ok, 0, &[0], "not whole rows of width 0"),
        (&ok, 3, &[0], "4 values are not whole rows of width 3"),
        (&ok, 2, &[], "no rows to fit"),
        (&ok, 2, &[0, 2], "row 2 is out of range for 2 rows"),
        (&[1.0, f32::NAN], 1, &[0, 1], "row 1, column 0 is NaN"),
    ];
    for (data, width, rows, want) in cases {
        let err = Standardizer::fit(data, width, rows).unwrap_err();
        assert!(matches!(err, Error::Shape(_) | Error::Data(_)), "{want}: {err:?}");
        assert!(err.to_string().contains(want), "expected `{want}` in: {err}");
    }
    let broken = Standardizer { mean: vec![0.0, 0.0], std: vec![1.0, 0.0] };
    let err = broken.apply(&mut [1.0, 2.0]).unwrap_err().to_string();
    assert!(err.contains("std of column 1 is 0"), "a zero std from a bad file is refused: {err}");
    let err = Standardizer { mean: vec![0.0], std: vec![1.0] }.apply(&mut []).map(|_| "ok");
    assert_eq!(err.ok(), Some("ok"), "no rows is nothing to do");
}
