//! The forward and backward passes of [`super::CpuMlp`] over a [`Workspace`] of per-layer
//! activation buffers: the same sequence of ops, layer by layer, that the GPU trainer
//! dispatches as kernels.

use crate::error::Result;
use crate::ops::MatmulForm;
use crate::spec::{MlpSpec, ParamLayout};

use super::{
    activation_backward_into, activation_forward_into, add_bias, column_sums_into, elements, matmul_into,
};

/// Per-layer activation buffers for up to `rows` rows. Layer `l` has `out_l` outputs.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    rows: usize,
    /// `z_l = a_{l-1} W_l + b_l`: `[rows, out_l]`, every layer (the last one holds the logits).
    pub(super) z: Vec<Vec<f32>>,
    /// `a_l = act_l(z_l)`: `[rows, out_l]`, hidden layers only.
    a: Vec<Vec<f32>>,
    /// `dz_l`: `[rows, out_l]`, every layer (the last one holds dlogits).
    pub(super) dz: Vec<Vec<f32>>,
    /// `da_l = dz_{l+1} W_{l+1}^T`: `[rows, out_l]`, hidden layers only.
    da: Vec<Vec<f32>>,
}

impl Workspace {
    /// Grows the buffers to hold `rows` rows; never shrinks, so alternating batch sizes do not
    /// reallocate.
    pub(super) fn reserve(&mut self, spec: &MlpSpec, rows: usize) -> Result<()> {
        if rows <= self.rows {
            return Ok(());
        }
        let outs = &spec.sizes[1..];
        let hidden = &outs[..outs.len() - 1];
        let buffers = |sizes: &[usize]| -> Result<Vec<Vec<f32>>> {
            sizes.iter().map(|&o| Ok(vec![0.0; elements("activation buffer", rows, o)?])).collect()
        };
        self.z = buffers(outs)?;
        self.dz = buffers(outs)?;
        self.a = buffers(hidden)?;
        self.da = buffers(hidden)?;
        self.rows = rows;
        Ok(())
    }
}

/// The forward pass on `x: [rows, inputs]`: for each layer `z_l = a_{l-1} W_l + b_l` (with
/// `a_0 = x`), and `a_l = act_l(z_l)` for hidden layers. Leaves the logits in `work.z[last]`.
pub(super) fn forward(
    spec: &MlpSpec,
    layout: &ParamLayout,
    params: &[f32],
    work: &mut Workspace,
    x: &[f32],
    rows: usize,
) -> Result<()> {
    let last = layout.layers.len() - 1;
    for (l, slot) in layout.layers.iter().enumerate() {
        let (inp, out) = (slot.inputs, slot.outputs);
        let w = &params[slot.weight..slot.weight + inp * out];
        let b = &params[slot.bias..slot.bias + out];
        // a_{l-1}: [rows, inp]; the hidden activations before layer l are a[..l].
        let (before, after) = work.a.split_at_mut(l);
        let a_prev = if l == 0 { x } else { &before[l - 1][..rows * inp] };
        let z = &mut work.z[l][..rows * out];
        matmul_into(MatmulForm::AB, rows, out, inp, a_prev, w, z)?;
        add_bias(z, b)?;
        if l < last {
            activation_forward_into(z, spec.activations[l], &mut after[0][..rows * out])?;
        }
    }
    Ok(())
}

/// The backward pass, from `work.dz[last]` (dlogits) down: for each layer
/// `dW_l = a_{l-1}^T dz_l`, `db_l = column_sums(dz_l)`, and below the first layer
/// `da_{l-1} = dz_l W_l^T`, `dz_{l-1} = da_{l-1} * act'_{l-1}(z_{l-1})`. Writes only the
/// weight and bias slots of `grads`, so padding stays zero.
pub(super) fn backward(
    spec: &MlpSpec,
    layout: &ParamLayout,
    params: &[f32],
    grads: &mut [f32],
    work: &mut Workspace,
    x: &[f32],
    rows: usize,
) -> Result<()> {
    for (l, slot) in layout.layers.iter().enumerate().rev() {
        let (inp, out) = (slot.inputs, slot.outputs);
        let a_prev = if l == 0 { x } else { &work.a[l - 1][..rows * inp] };
        let dz = &work.dz[l][..rows * out];
        let dw = &mut grads[slot.weight..slot.weight + inp * out];
        matmul_into(MatmulForm::AtB, inp, out, rows, a_prev, dz, dw)?;
        column_sums_into(dz, rows, out, &mut grads[slot.bias..slot.bias + out])?;
        if l > 0 {
            // The input gradient of the first layer is never needed: x is data.
            let w = &params[slot.weight..slot.weight + inp * out];
            let da = &mut work.da[l - 1][..rows * inp];
            matmul_into(MatmulForm::ABt, rows, inp, out, dz, w, da)?;
            let z_prev = &work.z[l - 1][..rows * inp];
            let dz_prev = &mut work.dz[l - 1][..rows * inp];
            activation_backward_into(da, z_prev, spec.activations[l - 1], dz_prev)?;
        }
    }
    Ok(())
}
