//! The forward and backward passes of [`super::CpuMlp`] over a [`Workspace`] of per-layer
//! activation buffers, driven by the network's layer list: each layer's own forward and
//! backward live in `cpu/layers/`, as the GPU's recordings live in `gpu/replica/layers/`.

use crate::error::Result;
use crate::spec::{Layer, Network, ParamLayout};

use super::elements;
use super::layers::{dense, LayerInput};

/// Per-layer activation buffers for up to `rows` rows. Layer `l` has `out_l` outputs.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    rows: usize,
    /// `z_l = a_{l-1} W_l + b_l`: `[rows, out_l]`, every layer (the last one holds the logits).
    pub(super) z: Vec<Vec<f32>>,
    /// `a_l = act_l(z_l)`: `[rows, out_l]`, hidden layers only.
    a: Vec<Vec<f32>>,
    /// `dz_l`: `[rows, out_l]`, every layer (the last one holds dlogits; the others are
    /// written by the input-gradient product of the layer above, derivative included).
    pub(super) dz: Vec<Vec<f32>>,
    /// `W_l^T` of the layer whose input gradient is being computed: `inputs * outputs` floats
    /// of the largest layer above the first. Independent of the rows, sized once.
    wt: Vec<f32>,
    /// The second input half's share of a split layer's `z` (`cpu/layers/dense.rs`):
    /// `[rows, widest output]`.
    z_hi: Vec<f32>,
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
        let wt = widths.windows(2).skip(1).map(|w| w[0] * w[1]).max().unwrap_or(0);
        self.wt = vec![0.0; wt];
        self.z_hi = vec![0.0; elements("activation buffer", rows, outs.iter().copied().max().unwrap_or(0))?];
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
    x: LayerInput<'_>,
    rows: usize,
) -> Result<()> {
    let last = spec.layers.len() - 1;
    for (l, (layer, slots)) in spec.layers.iter().zip(&layout.layers).enumerate() {
        let (inp, out) = (slots.inputs, slots.outputs);
        // a_{l-1}: [rows, inp]; the hidden activations before layer l are a[..l].
        let (before, after) = work.a.split_at_mut(l);
        let a_prev = if l == 0 { x } else { LayerInput::Whole(&before[l - 1][..rows * inp]) };
        let z = &mut work.z[l][..rows * out];
        let h = if l < last { Some(&mut after[0][..rows * out]) } else { None };
        match *layer {
            Layer::Dense { activation, .. } => {
                dense::forward(slots, activation, params, a_prev, z, h, &mut work.z_hi, rows)?
            }
        }
    }
    Ok(())
}

/// The backward pass, from `work.dz[last]` (dlogits) down: layer `l`'s backward writes its
/// parameter gradients and, above the first layer, `dz_{l-1}`, the pre-activation gradient of
/// the layer below, delivered as that layer asks ([`dense::output_grad`]). Writes only the
/// weight and bias slots of `grads`, so padding stays zero.
pub(super) fn backward(
    spec: &Network,
    layout: &ParamLayout,
    params: &[f32],
    grads: &mut [f32],
    work: &mut Workspace,
    x: LayerInput<'_>,
    rows: usize,
) -> Result<()> {
    for (l, (layer, slots)) in spec.layers.iter().zip(&layout.layers).enumerate().rev() {
        let (inp, out) = (slots.inputs, slots.outputs);
        let a_prev = if l == 0 { x } else { LayerInput::Whole(&work.a[l - 1][..rows * inp]) };
        // dz_l is read, dz_{l-1} written: split the list between them.
        let (before, after) = work.dz.split_at_mut(l);
        let dz = &after[0][..rows * out];
        // The input gradient of the first layer is never needed: x is data.
        let below = match (l, before.last_mut()) {
            (1.., Some(dz_below)) => Some(match spec.layers[l - 1] {
                Layer::Dense { activation, .. } => {
                    dense::output_grad(activation, &work.z[l - 1][..rows * inp], &mut dz_below[..rows * inp])
                }
            }),
            _ => None,
        };
        match *layer {
            Layer::Dense { .. } => {
                dense::backward(slots, params, grads, a_prev, dz, below, &mut work.wt, rows)?
            }
        }
    }
    Ok(())
}
