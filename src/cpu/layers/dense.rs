//! [`Layer::Dense`](crate::spec::Layer::Dense) on the CPU: `z = x W + b`, `h = act(z)`, and
//! its backward (`dW = x^T dz`, `db` = column sums of `dz`, `dx = dz W^T` with the layer
//! below's activation derivative fused). As its GPU twin (`gpu/replica/layers/dense.rs`), the
//! bias and activation run in the forward product's epilogue and the derivative in the input
//! gradient's (`cpu/gemm.rs`).

use crate::error::Result;
use crate::spec::{Activation, LayerSlots};

use super::super::column_sums_into;
use super::super::gemm::{gemm, transpose_into, Epilogue, StridedA};
use super::OutputGrad;

/// Forward over `rows` rows. `x: [rows, inputs]`, `z: [rows, outputs]` receives `x W + b`;
/// `h: [rows, outputs]`, when given, receives `act(z)` (the last layer's `z` is what the loss
/// reads, so it needs no `h`).
pub(crate) fn forward(
    slots: &LayerSlots,
    activation: Activation,
    params: &[f32],
    x: &[f32],
    z: &mut [f32],
    h: Option<&mut [f32]>,
    rows: usize,
) -> Result<()> {
    let (inp, out) = (slots.inputs, slots.outputs);
    let w = &params[slots.weight..slots.weight + inp * out];
    let bias = &params[slots.bias..slots.bias + out];
    // x: [rows, inp] row-major; W: [inp, out] row-major, read in place.
    let x = StridedA { data: x, rs: inp, cs: 1 };
    gemm(x, w, z, (rows, out, inp), Epilogue::Bias { bias, act: activation, h })
}

/// Backward over `rows` rows from `dz: [rows, outputs]`, the gradient of the pre-activation:
/// `dW = x^T dz` and `db = column sums of dz` into their slots of `grads`, and, when `below`
/// is given (every layer but the first: `x` is data there), `dz_below = (dz W^T) * act'(z)`.
/// `wt` is scratch of at least `inputs * outputs` floats for `W^T`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    slots: &LayerSlots,
    params: &[f32],
    grads: &mut [f32],
    x: &[f32],
    dz: &[f32],
    below: Option<OutputGrad<'_>>,
    wt: &mut [f32],
    rows: usize,
) -> Result<()> {
    let (inp, out) = (slots.inputs, slots.outputs);
    // dW = x^T dz: [inp, out]; x^T(i, p) = x[p * inp + i].
    let xt = StridedA { data: x, rs: 1, cs: inp };
    gemm(xt, dz, &mut grads[slots.weight..slots.weight + inp * out], (inp, out, rows), Epilogue::None)?;
    column_sums_into(dz, rows, out, &mut grads[slots.bias..slots.bias + out])?;
    if let Some(below) = below {
        // dx = dz W^T: [rows, inp], with W^T: [out, inp] copied once for this step.
        let w = &params[slots.weight..slots.weight + inp * out];
        let wt = &mut wt[..inp * out];
        transpose_into(w, inp, out, wt)?;
        let dz = StridedA { data: dz, rs: out, cs: 1 };
        let epilogue = Epilogue::ActGrad { act: below.activation, z: below.z };
        gemm(dz, wt, below.dz, (rows, inp, out), epilogue)?;
    }
    Ok(())
}

/// How the layer takes the gradient of its output `h = act(z)` from the layer above: into
/// `dz`, times `act'(z)`. `dz` and `z` are `[rows, outputs]`.
pub(crate) fn output_grad<'a>(activation: Activation, z: &'a [f32], dz: &'a mut [f32]) -> OutputGrad<'a> {
    OutputGrad { dz, activation, z }
}
