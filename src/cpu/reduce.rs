//! Row-broadcast bias addition and column sums (the bias gradient), matching
//! `shaders/reduce.wgsl`.

use crate::error::{Error, Result};

use super::{check_len, elements};

/// `z[r, j] += bias[j]` for every row; `z: [rows, bias.len()]` row-major.
pub fn add_bias(z: &mut [f32], bias: &[f32]) -> Result<()> {
    if bias.is_empty() || z.is_empty() || !z.len().is_multiple_of(bias.len()) {
        return Err(Error::Shape(format!(
            "add_bias needs z: [rows, {}] with rows > 0, got {} values",
            bias.len(),
            z.len()
        )));
    }
    for row in z.chunks_exact_mut(bias.len()) {
        for (z, &b) in row.iter_mut().zip(bias) {
            *z += b;
        }
    }
    Ok(())
}

/// `s[j] = sum_r x[r, j]` for `x: [rows, cols]` row-major, in a new buffer.
///
/// The sum is accumulated in f32 row by row, in row order: the GPU reduction may add in
/// another order, so tests compare the two with a rounding bound, never bit for bit.
pub fn column_sums(x: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
    let mut s = vec![0.0; elements("column_sums output", 1, cols)?];
    column_sums_into(x, rows, cols, &mut s)?;
    Ok(s)
}

/// [`column_sums`] into `s: [cols]`, which is overwritten.
pub fn column_sums_into(x: &[f32], rows: usize, cols: usize, s: &mut [f32]) -> Result<()> {
    check_len("column_sums input", x.len(), elements("column_sums input", rows, cols)?)?;
    check_len("column_sums output", s.len(), cols)?;
    s.fill(0.0);
    // Row by row rather than column by column: each row is contiguous, so the inner loop
    // streams memory and vectorises.
    for row in x.chunks_exact(cols) {
        for (s, &v) in s.iter_mut().zip(row) {
            *s += v;
        }
    }
    Ok(())
}
