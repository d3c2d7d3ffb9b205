//! Matrix products in the three forms training needs (see [`MatmulForm`]).
//!
//! `matrixmultiply::sgemm` takes a row and a column stride for each operand, so a transposed
//! operand is only a swap of strides: the three forms are one call with the strides of
//! [`MatmulForm::strides`], and nothing is ever copied to transpose. Products run on the
//! calling thread unless they are large (see the module docs of [`crate::cpu`] for why);
//! large ones are cut into blocks of C's rows, one sgemm per block on rayon's threads. Each
//! output is still summed by one sgemm call over the same k, so the split never changes a bit.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ops::MatmulForm;

use super::{check_len, elements};

/// `C = op(A) op(B)`, `C: [m, n]` row-major, in a new buffer.
///
/// `AB`: `a: [m, k]`, `b: [k, n]`; `AtB`: `a: [k, m]`, `b: [k, n]`; `ABt`: `a: [m, k]`,
/// `b: [n, k]`; all row-major. Zero sizes and wrong slice lengths are [`Error::Shape`].
pub fn matmul(form: MatmulForm, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    let mut c = vec![0.0; elements("matmul output C", m, n)?];
    matmul_into(form, m, n, k, a, b, &mut c)?;
    Ok(c)
}

/// [`matmul`] writing into `c: [m, n]`, which is overwritten (its old contents are never read).
pub fn matmul_into(
    form: MatmulForm,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> Result<()> {
    let (a_rows, a_cols, b_rows, b_cols) = match form {
        MatmulForm::AB => (m, k, k, n),
        MatmulForm::AtB => (k, m, k, n),
        MatmulForm::ABt => (m, k, n, k),
    };
    check_len("matmul input A", a.len(), elements("matmul input A", a_rows, a_cols)?)?;
    check_len("matmul input B", b.len(), elements("matmul input B", b_rows, b_cols)?)?;
    check_len("matmul output C", c.len(), elements("matmul output C", m, n)?)?;
    // sgemm takes isize strides; a slice never holds more than isize::MAX bytes, so every
    // stride below (at most a slice length) converts, but say so rather than assume.
    let [a_rs, a_cs, b_rs, b_cs] = form.strides(m, n, k);
    let stride =
        |s: usize| isize::try_from(s).map_err(|_| Error::Shape(format!("matmul stride {s} over isize")));
    let (a_rs, a_cs, b_rs, b_cs) = (stride(a_rs)?, stride(a_cs)?, stride(b_rs)?, stride(b_cs)?);
    let c_rs = stride(n)?;
    let blocks = row_blocks(m, n, k);
    let rows_per = m.div_ceil(blocks);
    let block = |(i, c_block): (usize, &mut [f32])| {
        let rows = c_block.len() / n;
        // Rows i0.. of op(A) start at a[i0 * a_rs].
        let a_block = &a[i * rows_per * a_rs.unsigned_abs()..];
        // SAFETY: the lengths were checked above: with these strides the largest index read
        // from A is (m-1)*a_rs + (k-1)*a_cs = a.len()-1 (likewise for B), so for op(A)'s rows
        // i0..i0+rows, read from a_block = a[i0*a_rs..], every index stays within a_block.
        // C's block holds exactly rows*n floats, written with row stride n. beta = 0 means C
        // is written without being read, so its old contents (even NaN) cannot leak in.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                n,
                1.0,
                a_block.as_ptr(),
                a_rs,
                a_cs,
                b.as_ptr(),
                b_rs,
                b_cs,
                0.0,
                c_block.as_mut_ptr(),
                c_rs,
                1,
            );
        }
    };
    if blocks == 1 {
        block((0, c));
    } else {
        c.par_chunks_mut(rows_per * n).enumerate().for_each(block);
    }
    Ok(())
}

/// Multiply-adds from which a product is split over threads. Below it a hand-off between
/// threads (tens of microseconds on a VM) costs more than it saves: an MNIST-sized model's
/// largest product (128 x 64 x 784, 6.4M) ran slower split, a 1024^3 product (1G) twice as
/// fast.
const PARALLEL_MIN_MACS: usize = 1 << 26;

/// How many row blocks to cut C's `m` rows into: one per rayon thread for large products, at
/// least 16 rows each, else 1.
fn row_blocks(m: usize, n: usize, k: usize) -> usize {
    if m.saturating_mul(n).saturating_mul(k) < PARALLEL_MIN_MACS {
        return 1;
    }
    rayon::current_num_threads().min(m / 16).max(1)
}
