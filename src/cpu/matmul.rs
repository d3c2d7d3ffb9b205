//! Matrix products in the three forms training needs (see [`MatmulForm`]).
//!
//! `matrixmultiply::sgemm` takes a row and a column stride for each operand, so a transposed
//! operand is only a swap of strides: the three forms are one call with the strides of
//! [`MatmulForm::strides`], and nothing is ever copied to transpose. Every product runs on
//! the calling thread (see the module docs of [`crate::cpu`] for why).

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
    // SAFETY: the lengths were checked above: with these strides the largest index read from
    // A is (m-1)*a_rs + (k-1)*a_cs = a.len()-1 (likewise for B), and the largest written in
    // C is (m-1)*n + n-1 = c.len()-1. beta = 0 means C is written without being read, so its
    // old contents (even NaN) cannot leak into the result.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs,
            a_cs,
            b.as_ptr(),
            b_rs,
            b_cs,
            0.0,
            c.as_mut_ptr(),
            c_rs,
            1,
        );
    }
    Ok(())
}
