//! [`Layer::Dropout`](crate::spec::Layer::Dropout) on the CPU: in training
//! `y = keep ? x * scale : 0` with the keep decision of [`DropoutMask`], and its backward
//! `dx = keep ? dy * scale : 0`, delivered to the layer below times its activation derivative
//! (as a dense layer's input gradient is). In evaluation `y = x`. The GPU twin is
//! `gpu/replica/layers/dropout.rs` with `shaders/dropout.wgsl`, element for element the same
//! operations, so both give the same bits.
//!
//! The backward draws the mask again rather than reading one stored by the forward: ten
//! Philox rounds per four elements cost less than writing and reading back a mask as large as
//! the activations (on the GPU, where these kernels are bound by memory traffic, and here,
//! where the workspace then needs no mask buffer).

use crate::error::{Error, Result};
use crate::spec::{Activation, DropoutMask};

use super::super::activation::scale_by_derivative;
use super::{LayerInput, OutputGrad};

/// Where a training pass's masks come from: the optimizer step it computes the gradient for,
/// and the position of its first row in the global batch (non-zero on a data-parallel shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaskAt {
    pub step: u64,
    pub row_base: usize,
}

/// `out[i] = keep(i) ? x[i] * scale : 0` over `[rows, units]`, row by row, four units per
/// draw. Branch-free: the product's bits are and-ed with all ones or all zeros (a kept
/// element's product, or +0.0), the bits of the select the kernel makes, without a
/// mispredicted branch per dropped element.
#[inline]
fn apply(mask: &DropoutMask, rows: usize, units: usize, row_base: usize, x: &[f32], out: &mut [f32]) {
    let scale = mask.scale;
    for r in 0..rows {
        let row = (row_base + r) as u32;
        for quad in 0..units.div_ceil(4) {
            let words = mask.words(row, quad as u32);
            for (j, &w) in words.iter().enumerate().take(units - 4 * quad) {
                let i = r * units + 4 * quad + j;
                let keep = 0u32.wrapping_sub(u32::from(w >= mask.threshold));
                out[i] = f32::from_bits((x[i] * scale).to_bits() & keep);
            }
        }
    }
}

/// Forward over `rows` rows of `units`: `x, y: [rows, units]`. With a mask (training),
/// `y = keep ? x * scale : 0`; without (evaluation), `y = x`.
pub(crate) fn forward(
    mask: Option<(&DropoutMask, usize)>,
    x: LayerInput<'_>,
    y: &mut [f32],
    rows: usize,
    units: usize,
) -> Result<()> {
    let LayerInput::Whole(x) = x else {
        return Err(Error::Shape("a dropout layer got its inputs in halves".into()));
    };
    let n = rows * units;
    let (x, y) = match (x.get(..n), y.get_mut(..n)) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err(Error::Shape(format!("dropout over [{rows}, {units}]: a buffer is too short"))),
    };
    let Some((mask, row_base)) = mask else {
        y.copy_from_slice(x);
        return Ok(());
    };
    apply(mask, rows, units, row_base, x, y);
    Ok(())
}

/// Backward over `rows` rows of `units` from `dy: [rows, units]`: the gradient of the input,
/// `keep ? dy * scale : 0`, written into `below.dz` and multiplied there by the layer below's
/// activation derivative at `below.z`.
pub(crate) fn backward(
    mask: &DropoutMask,
    row_base: usize,
    dy: &[f32],
    below: OutputGrad<'_>,
    rows: usize,
    units: usize,
) -> Result<()> {
    input_grad(mask, row_base, dy, (below.dz, below.z, below.activation), rows, units)
}

/// [`backward`] with the layer below given as `(dx, z, activation)`: `dx = (keep ? dy * scale
/// : 0) * act'(z)`, all `[rows, units]`.
pub(crate) fn input_grad(
    mask: &DropoutMask,
    row_base: usize,
    dy: &[f32],
    (dx, z, activation): (&mut [f32], &[f32], Activation),
    rows: usize,
    units: usize,
) -> Result<()> {
    let n = rows * units;
    let (dy, dx, z) = match (dy.get(..n), dx.get_mut(..n), z.get(..n)) {
        (Some(dy), Some(dx), Some(z)) => (dy, dx, z),
        _ => {
            return Err(Error::Shape(format!(
                "dropout backward over [{rows}, {units}]: a buffer is too short"
            )))
        }
    };
    apply(mask, rows, units, row_base, dy, dx);
    scale_by_derivative(dx, z, activation);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Forward and backward against a float64 reference, `x / (1 - rate)` where kept (the
    /// keep decisions are the mask's definition). Tolerance: `scale = fl(1 / fl(1 - rate))`
    /// is within 2u of `1 / (1 - rate)` (u = 2^-24, one rounding each), and the product
    /// rounds once more: 3u relative, plus second-order terms, so 3.01u. The backward over
    /// the identity and ReLU, whose derivatives are exactly 1 or 0, has the same bound.
    #[test]
    fn forward_and_backward_match_a_float64_reference() {
        let u = 1.0 / 16_777_216.0f64;
        let (rows, units) = (1757usize, 37usize);
        for rate in [0.3f32, 0.0, 0.5, 0.9, 0.123_456_7] {
            let mask = DropoutMask::new(rate, 5, 1, 11);
            let x = values(rows * units, 1);
            let z = values(rows * units, 2);
            let mut y = vec![0.0f32; rows * units];
            forward(Some((&mask, 3)), LayerInput::Whole(&x), &mut y, rows, units).unwrap();
            for act in [Activation::Identity, Activation::Relu] {
                let mut dx = vec![0.0f32; rows * units];
                input_grad(&mask, 3, &x, (&mut dx, &z, act), rows, units).unwrap();
                for i in 0..rows * units {
                    let keep = mask.keeps((3 + i / units) as u32, (i % units) as u32);
                    let y64 = if keep { f64::from(x[i]) / (1.0 - f64::from(rate)) } else { 0.0 };
                    let d = match act {
                        Activation::Relu if z[i] <= 0.0 => 0.0,
                        _ => 1.0,
                    };
                    let tol = 3.01 * u * y64.abs();
                    let what = format!("rate {rate} {act:?} [{}, {}]", i / units, i % units);
                    assert!((f64::from(y[i]) - y64).abs() <= tol, "{what}: forward {} vs {y64}", y[i]);
                    assert!(
                        (f64::from(dx[i]) - y64 * d).abs() <= tol,
                        "{what}: backward {} vs {}",
                        dx[i],
                        y64 * d
                    );
                }
            }
        }
    }

    /// Evaluation is the identity, bit for bit.
    #[test]
    fn evaluation_is_the_identity() {
        let x = values(37 * 13, 3);
        let mut y = vec![0.0f32; x.len()];
        forward(None, LayerInput::Whole(&x), &mut y, 13, 37).unwrap();
        assert!(x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
