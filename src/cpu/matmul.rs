//! Matrix products in the three forms training needs (see [`MatmulForm`]), on the kernel of
//! `gemm.rs`: `A` is read at any strides, so `AB` and `AtB` are one call with the strides of
//! [`MatmulForm::strides`]; `ABt` transposes `B` first. Every output is one accumulator summed
//! in order of `k`, so how the product is cut over threads never changes a bit.

use crate::error::Result;
use crate::ops::MatmulForm;

use super::gemm::{gemm, transpose_into, Epilogue, StridedA};
use super::simd::Isa;
use super::{check_len, elements};

/// Which kernel [`matmul`] (and every product of the CPU executor) runs on this CPU:
/// `"avx512"`, `"avx2+fma"` (the same bits), or `"matrixmultiply"` where the CPU has neither.
pub fn matmul_kernel() -> &'static str {
    Isa::detect().name()
}

/// `C = op(A) op(B)`, `C: [m, n]` row-major, in a new buffer.
///
/// `AB`: `a: [m, k]`, `b: [k, n]`; `AtB`: `a: [k, m]`, `b: [k, n]`; `ABt`: `a: [m, k]`,
/// `b: [n, k]`; all row-major. Zero sizes and wrong slice lengths are [`Error::Shape`](crate::Error::Shape).
pub fn matmul(form: MatmulForm, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    let mut c = vec![0.0; elements("matmul output C", m, n)?];
    matmul_into(form, m, n, k, a, b, &mut c)?;
    Ok(c)
}

/// [`matmul`] writing into `c: [m, n]`, which is overwritten (its old contents are never read).
///
/// `ABt` first copies `B` transposed into a temporary buffer; training's own input gradients
/// transpose into a reused workspace instead (`cpu/layers/dense.rs`).
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
    let [a_rs, a_cs, _, _] = form.strides(m, n, k);
    let a = StridedA { data: a, rs: a_rs, cs: a_cs };
    match form {
        MatmulForm::AB | MatmulForm::AtB => gemm(a, b, c, (m, n, k), Epilogue::None),
        MatmulForm::ABt => {
            let mut bt = vec![0.0; b.len()];
            transpose_into(b, n, k, &mut bt)?;
            gemm(a, &bt, c, (m, n, k), Epilogue::None)
        }
    }
}
