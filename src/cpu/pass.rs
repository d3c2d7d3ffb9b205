//! The forward and backward passes of [`super::CpuMlp`] over a [`Workspace`] of per-layer
//! activation buffers, driven by the network's layer list: each layer's own forward and
//! backward live in `cpu/layers/`, as the GPU's recordings live in `gpu/replica/layers/`.

use crate::error::{Error, Result};
use crate::spec::{Activation, DropoutMask, Layer, LayerSlots, Network, ParamLayout};

use super::aligned::Floats;
use super::elements;
use super::layers::{dense, dropout, LayerInput, OutputGrad, Params};

pub(super) use dropout::MaskAt;

/// Per-layer activation buffers for up to `rows` rows. Layer `l` has `out_l` outputs.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    rows: usize,
    /// `z_l = a_{l-1} W_l + b_l`: `[rows, out_l]`, every layer (the last one holds the logits).
    /// Every buffer here starts on a cache line (see `aligned.rs`).
    pub(super) z: Vec<Floats>,
    /// `a_l = act_l(z_l)`: `[rows, out_l]`, hidden layers only.
    a: Vec<Floats>,
    /// `dz_l`: `[rows, out_l]`, every layer (the last one holds dlogits; the others are
    /// written by the input-gradient product of the layer above, derivative included).
    pub(super) dz: Vec<Floats>,
    /// `W_l^T` of the layer whose input gradient is being computed: `inputs * outputs` floats
    /// of the largest layer above the first. Independent of the rows, sized once.
    wt: Floats,
    /// The second input half's share of a split layer's `z` (`cpu/layers/dense.rs`):
    /// `[rows, widest output]`.
    z_hi: Floats,
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
        let buffers = |sizes: &[usize]| -> Result<Vec<Floats>> {
            sizes.iter().map(|&o| Ok(Floats::zeros(elements("activation buffer", rows, o)?))).collect()
        };
        self.z = buffers(outs)?;
        self.dz = buffers(outs)?;
        self.a = buffers(hidden)?;
        // Every dense layer but the first computes an input gradient (a layer without
        // parameters below the first needs none: under it is only data).
        let wt = spec.dense_shapes().iter().skip(1).map(|(i, o)| i * o).max().unwrap_or(0);
        self.wt = Floats::zeros(wt);
        self.z_hi =
            Floats::zeros(elements("activation buffer", rows, outs.iter().copied().max().unwrap_or(0))?);
        self.rows = rows;
        Ok(())
    }
}

/// The forward pass on `x: [rows, inputs]`, layer by layer from the network's list: layer
/// `l` reads `a_{l-1}` (with `a_0 = x`) and writes `z_l` and, for hidden layers, `a_l` (a
/// dropout layer writes `a_l` only). Leaves the logits in `work.z[last]`. `train` gives the
/// dropout masks of a training pass; without it dropout is the identity (evaluation).
pub(super) fn forward(
    spec: &Network,
    layout: &ParamLayout,
    params: &[f32],
    work: &mut Workspace,
    x: LayerInput<'_>,
    rows: usize,
    train: Option<MaskAt>,
) -> Result<()> {
    let last = spec.layers.len() - 1;
    let mut inp = spec.inputs;
    for (l, layer) in spec.layers.iter().enumerate() {
        let out = layer.outputs(inp);
        // a_{l-1}: [rows, inp]; the hidden activations before layer l are a[..l].
        let (before, after) = work.a.split_at_mut(l);
        let a_prev = if l == 0 { x } else { LayerInput::Whole(&before[l - 1][..rows * inp]) };
        let h = if l < last { Some(&mut after[0][..rows * out]) } else { None };
        match *layer {
            Layer::Dense { activation, .. } => {
                let z = &mut work.z[l][..rows * out];
                let slots = slots_of(layout, l)?;
                dense::forward(slots, activation, params, a_prev, z, h, &mut work.z_hi, rows)?
            }
            Layer::Dropout { .. } => {
                let mask =
                    train.and_then(|at| DropoutMask::of_layer(layer, l, at.step).map(|m| (m, at.row_base)));
                let y = h.ok_or_else(|| Error::Config(format!("layer {l} (dropout) is the last layer")))?;
                dropout::forward(mask.as_ref().map(|(m, base)| (m, *base)), a_prev, y, rows, out)?
            }
        }
        inp = out;
    }
    Ok(())
}

/// Layer `l`'s tensors (a dense layer's).
fn slots_of(layout: &ParamLayout, l: usize) -> Result<&LayerSlots> {
    layout.of_layer(l).ok_or_else(|| Error::Shape(format!("layer {l} has no tensors in the layout")))
}

/// The backward pass, from `work.dz[last]` (dlogits) down: layer `l`'s backward writes its
/// parameter gradients and, when a dense layer lies below it, `dz_{l-1}`, the gradient of the
/// layer below's output delivered as that layer asks (a dense layer: times its activation's
/// derivative, [`dense::output_grad`]; a dropout: as it is). Writes only the weight and bias
/// slots of `grads`, so padding stays zero. `at` gives the dropout masks, drawn again. With
/// [`Params::Update`] each layer's parameters are updated as their gradients are done (in the
/// order of the pass, top layer first), padding left alone.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    spec: &Network,
    layout: &ParamLayout,
    params: &mut Params<'_>,
    grads: &mut [f32],
    work: &mut Workspace,
    x: LayerInput<'_>,
    rows: usize,
    at: MaskAt,
) -> Result<()> {
    let mut out = spec.outputs();
    for (l, layer) in spec.layers.iter().enumerate().rev() {
        // The width of layer l's input: the output of layer l-1.
        let inp = spec.layers[..l].iter().fold(spec.inputs, |w, layer| layer.outputs(w));
        let a_prev = if l == 0 { x } else { LayerInput::Whole(&work.a[l - 1][..rows * inp]) };
        // dz_l is read, dz_{l-1} written: split the list between them.
        let (before, after) = work.dz.split_at_mut(l);
        let dz = &after[0][..rows * out];
        // No input gradient where only data and parameter-free layers lie below.
        let needed = spec.layers[..l].iter().any(|b| matches!(b, Layer::Dense { .. }));
        let below = match (needed, before.last_mut()) {
            (true, Some(dz_below)) => {
                let (z, dz_below) = (&work.z[l - 1][..rows * inp], &mut dz_below[..rows * inp]);
                Some(match spec.layers[l - 1] {
                    Layer::Dense { activation, .. } => dense::output_grad(activation, z, dz_below),
                    // A dropout takes its output's gradient as it is (the identity's factor
                    // of 1 is exact); its own backward applies the mask.
                    Layer::Dropout { .. } => OutputGrad { dz: dz_below, activation: Activation::Identity, z },
                })
            }
            _ => None,
        };
        match *layer {
            Layer::Dense { .. } => {
                let slots = slots_of(layout, l)?;
                dense::backward(slots, params, grads, a_prev, dz, below, &mut work.wt, rows)?
            }
            Layer::Dropout { .. } => {
                if let (Some(mask), Some(below)) = (DropoutMask::of_layer(layer, l, at.step), below) {
                    dropout::backward(&mask, at.row_base, dz, below, rows, out)?
                }
            }
        }
        out = inp;
    }
    Ok(())
}
