//! The forward and backward passes of [`super::CpuMlp`] over a [`Workspace`] of per-layer
//! activation buffers, driven by the network's layer list: each layer's own forward and
//! backward live in `cpu/layers/`, as the GPU's recordings live in `gpu/replica/layers/`.

use crate::error::Result;
use crate::spec::{Layer, Network, ParamLayout};

use super::elements;
use super::layers::dense;

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
    pub(super) fn reserve(&mut self, spec: &Network, rows: usize) -> Result<()> {
        if rows <= self.rows {
            return Ok(());
        }
        let widths = spec.widths();
        let outs = &widths[1..];
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

/// The forward pass on `x: [rows, inputs]`, layer by layer from the network's list: layer
/// `l` reads `a_{l-1}` (with `a_0 = x`) and writes `z_l` and, for hidden layers, `a_l`. Leaves
/// the logits in `work.z[last]`.
pub(super) fn forward(
    spec: &Network,
    layout: &ParamLayout,
    params: &[f32],
    work: &mut Workspace,
    x: &[f32],
    rows: usize,
) -> Result<()> {
    let last = spec.layers.len() - 1;
    for (l, (layer, slots)) in spec.layers.iter().zip(&layout.layers).enumerate() {
        let (inp, out) = (slots.inputs, slots.outputs);
        // a_{l-1}: [rows, inp]; the hidden activations before layer l are a[..l].
        let (before, after) = work.a.split_at_mut(l);
        let a_prev = if l == 0 { x } else { &before[l - 1][..rows * inp] };
        let z = &mut work.z[l][..rows * out];
        let h = if l < last { Some(&mut after[0][..rows * out]) } else { None };
        match *layer {
            Layer::Dense { activation, .. } => dense::forward(slots, activation, params, a_prev, z, h, rows)?,
        }
    }
    Ok(())
}

/// The backward pass, from `work.dz[last]` (dlogits) down: layer `l`'s backward writes its
/// parameter gradients and, above the first layer, `da_{l-1}`, the gradient of the output of
/// the layer below, which that layer turns into its own `dz_{l-1}`. Writes only the weight and
/// bias slots of `grads`, so padding stays zero.
pub(super) fn backward(
    spec: &Network,
    layout: &ParamLayout,
    params: &[f32],
    grads: &mut [f32],
    work: &mut Workspace,
    x: &[f32],
    rows: usize,
) -> Result<()> {
    for (l, (layer, slots)) in spec.layers.iter().zip(&layout.layers).enumerate().rev() {
        let (inp, out) = (slots.inputs, slots.outputs);
        let a_prev = if l == 0 { x } else { &work.a[l - 1][..rows * inp] };
        let dz = &work.dz[l][..rows * out];
        // The input gradient of the first layer is never needed: x is data.
        let da = if l > 0 { Some(&mut work.da[l - 1][..rows * inp]) } else { None };
        match *layer {
            Layer::Dense { .. } => dense::backward(slots, params, grads, a_prev, dz, da, rows)?,
        }
        if l > 0 {
            let (da, z_prev) = (&work.da[l - 1][..rows * inp], &work.z[l - 1][..rows * inp]);
            let dz_prev = &mut work.dz[l - 1][..rows * inp];
            match spec.layers[l - 1] {
                Layer::Dense { activation, .. } => dense::output_grad(activation, da, z_prev, dz_prev)?,
            }
        }
    }
    Ok(())
}
