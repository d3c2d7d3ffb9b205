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
use crate::spec::DropoutMask;

use super::super::activation::scale_by_derivative;
use super::{LayerInput, OutputGrad};

/// Where a training pass's masks come from: the optimizer step it computes the gradient for,
/// and the position of its first row in the global batch (non-zero on a data-parallel shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaskAt {
    pub step: u64,
    pub row_base: usize,
}

/// `f(i, keep)` for every element `i` of `[rows, units]`, row by row, four units per draw.
#[inline]
fn each_keep(mask: &DropoutMask, rows: usize, units: usize, row_base: usize, mut f: impl FnMut(usize, bool)) {
    for r in 0..rows {
        let row = (row_base + r) as u32;
        for quad in 0..units.div_ceil(4) {
            let words = mask.words(row, quad as u32);
            for (j, &w) in words.iter().enumerate().take(units - 4 * quad) {
                f(r * units + 4 * quad + j, w >= mask.threshold);
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
    let scale = mask.scale;
    each_keep(mask, rows, units, row_base, |i, keep| y[i] = if keep { x[i] * scale } else { 0.0 });
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
    let n = rows * units;
    let (dy, dx, z) = match (dy.get(..n), below.dz.get_mut(..n), below.z.get(..n)) {
        (Some(dy), Some(dx), Some(z)) => (dy, dx, z),
        _ => {
            return Err(Error::Shape(format!(
                "dropout backward over [{rows}, {units}]: a buffer is too short"
            )))
        }
    };
    let scale = mask.scale;
    each_keep(mask, rows, units, row_base, |i, keep| dx[i] = if keep { dy[i] * scale } else { 0.0 });
    scale_by_derivative(dx, z, below.activation);
    Ok(())
}
