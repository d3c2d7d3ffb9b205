//! [`Layer::Dense`](crate::spec::Layer::Dense) on the CPU: `z = x W + b`, `h = act(z)`, and
//! its backward. The GPU twin (`gpu/replica/layers/dense.rs`) fuses the bias and activation
//! into the product's epilogue; the values are the same (the sums run in the same order).

use crate::error::Result;
use crate::ops::MatmulForm;
use crate::spec::{Activation, LayerSlots};

use super::super::{
    activation_backward_into, activation_forward_into, add_bias, column_sums_into, matmul_into,
};

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
    let b = &params[slots.bias..slots.bias + out];
    matmul_into(MatmulForm::AB, rows, out, inp, x, w, z)?;
    add_bias(z, b)?;
    if let Some(h) = h {
        activation_forward_into(z, activation, h)?;
    }
    Ok(())
}

/// Backward over `rows` rows from `dz: [rows, outputs]`, the gradient of the pre-activation:
/// `dW = x^T dz` and `db = column sums of dz` into their slots of `grads`, and, when `dx` is
/// given (every layer but the first: `x` is data there), `dx = dz W^T: [rows, inputs]`.
pub(crate) fn backward(
    slots: &LayerSlots,
    params: &[f32],
    grads: &mut [f32],
    x: &[f32],
    dz: &[f32],
    dx: Option<&mut [f32]>,
    rows: usize,
) -> Result<()> {
    let (inp, out) = (slots.inputs, slots.outputs);
    matmul_into(MatmulForm::AtB, inp, out, rows, x, dz, &mut grads[slots.weight..slots.weight + inp * out])?;
    column_sums_into(dz, rows, out, &mut grads[slots.bias..slots.bias + out])?;
    if let Some(dx) = dx {
        let w = &params[slots.weight..slots.weight + inp * out];
        matmul_into(MatmulForm::ABt, rows, inp, out, dz, w, dx)?;
    }
    Ok(())
}

/// The gradient of the layer's output `dh` turned into that of its pre-activation:
/// `dz = dh * act'(z)`, all `[rows, outputs]`.
pub(crate) fn output_grad(activation: Activation, dh: &[f32], z: &[f32], dz: &mut [f32]) -> Result<()> {
    activation_backward_into(dh, z, activation, dz)
}
