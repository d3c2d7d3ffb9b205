//! Which operands of a recorded pass live in textures. Each such texture is filled once per
//! pass (by the gather, by a pack launch before its layer's forward or backward, or by the
//! one-launch backward of the layer above) and read as stored by every texture product that
//! needs it, so no product packs again what another has packed: a dense layer's input is A
//! of its forward and of `dW = a^T dz`, `W` is B of the forward and of `dX = dz W^T`, `dz`
//! is B of `dW` and A of `dX`. A texture only pays where the products that read it run
//! texture variants, so each is planned only where the autotuner picks one for every reader
//! (both readers, for a texture packed by a launch of its own), priced as that reader will be
//! recorded (A packed ahead or not): a planned texture and a different pick would be an error
//! at recording (`Kernels::matmul_with_sums`).

use super::layers::OutputGrad;
use super::Replica;
use crate::error::Result;
use crate::gpu::kernels::{Dispatch, GatherSources, MatmulCall, OperandTexture};
use crate::spec::Layer;

/// A layer's operands in textures (see the header). `None`: its products read the buffer,
/// or pack it for themselves.
#[derive(Debug, Default)]
pub(super) struct LayerTextures {
    /// The layer's input: the batch gathered into a texture for layer 0, or `a_{l-1}`
    /// packed before the forward.
    pub input: Option<OperandTexture>,
    /// `W_l`: packed by the gather for layer 0, before the forward otherwise.
    pub weights: Option<OperandTexture>,
    /// `dz_l`: written by the one-launch backward of the layer above, or packed before the
    /// layer's backward (`dz_packed`).
    pub dz: Option<OperandTexture>,
    /// Whether `dz` is packed from its buffer before the layer's backward.
    pub dz_packed: bool,
    /// Whether the input gradient's product reads `dz` from its texture.
    pub dx_reads_dz: bool,
}

impl LayerTextures {
    /// The textures of a pass's layers: the batch's and layer 0's weights as the gather
    /// fills them, and when training with fused launches the rest of the header's.
    pub(super) fn plan(
        replica: &Replica,
        rows: usize,
        train: bool,
        batch: Option<OperandTexture>,
        first_weights: Option<OperandTexture>,
    ) -> Result<Vec<LayerTextures>> {
        let r = replica;
        let mut t: Vec<LayerTextures> = r.spec.layers.iter().map(|_| LayerTextures::default()).collect();
        let batch_texture = batch.is_some();
        t[0] = LayerTextures { input: batch, weights: first_weights, ..Default::default() };
        if !(r.fuse && train) {
            return Ok(t);
        }
        let last = r.spec.layers.len() - 1;
        // The last layer of a fused softmax head runs its forward in the head's launch.
        let head = r.fused_head(rows, batch_texture);
        let forward_call = |l: usize| match r.spec.layers[l] {
            Layer::Dense { activation, .. } if !(head && l == last) => {
                r.dense_forward_call(l, activation, rows).map(Some)
            }
            _ => Ok(None),
        };
        // Inputs, read by the forward and by dW (a one-launch backward reads the buffer).
        for (l, layer) in t.iter_mut().enumerate().skip(1) {
            let Some(forward) = forward_call(l)? else { continue };
            if r.dense_below(l) && r.backward_in_one_launch(l, rows, false) {
                continue;
            }
            let dw = r.dense_weight_grad_call(l, rows)?;
            if r.reads_textures(&[(&forward, true), (&dw, true)])? {
                layer.input = r.kernels.matmul.operand_texture(&r.gpu, rows, forward.k)?;
            }
        }
        // dz, written by the one-launch backward above, read by dW.
        for l in 1..t.len() {
            let in_texture = |layer: usize| t[layer].input.is_some();
            if let Some(dz) = r.dz_texture(l, rows, in_texture)? {
                t[l - 1].dz = Some(dz);
            }
        }
        // dz for dX too; packed before dW where nothing above writes it, if dW reads it too.
        for (l, layer) in t.iter_mut().enumerate().skip(1) {
            let Some(below) = r.output_grad_below(l) else { continue };
            if !matches!(r.spec.layers[l], Layer::Dense { .. })
                || r.backward_in_one_launch(l, rows, layer.input.is_some())
            {
                continue;
            }
            let dx = r.dense_input_grad_call(l, rows, &below)?;
            layer.dx_reads_dz = r.reads_textures(&[(&dx, true)])?;
            if layer.dz.is_none() && layer.dx_reads_dz {
                let dw = r.dense_weight_grad_call(l, rows)?;
                if r.reads_textures(&[(&dw, layer.input.is_some())])? {
                    layer.dz = r.kernels.matmul.operand_texture(&r.gpu, rows, dw.n)?;
                    layer.dz_packed = layer.dz.is_some();
                }
            }
            layer.dx_reads_dz &= layer.dz.is_some();
        }
        // Weights, read by the forward and by dX.
        for (l, layer) in t.iter_mut().enumerate().skip(1) {
            let Some(forward) = forward_call(l)? else { continue };
            let Some(below) = r.output_grad_below(l) else { continue };
            if r.backward_in_one_launch(l, rows, layer.input.is_some()) {
                continue;
            }
            let dx = r.dense_input_grad_call(l, rows, &below)?;
            if r.reads_textures(&[(&forward, layer.input.is_some()), (&dx, layer.dx_reads_dz)])? {
                layer.weights = r.kernels.matmul.operand_texture(&r.gpu, forward.k, forward.n)?;
            }
        }
        Ok(t)
    }

    /// The launch that fills this layer's `dz` texture from its buffer before its backward
    /// (`dz_packed`; `dw`: the layer's weight-gradient product, whose B it is).
    pub(super) fn dz_pack(&self, replica: &Replica, dw: &MatmulCall<'_>) -> Result<Option<Dispatch>> {
        let (Some(tex), Some([_, dz])) = (self.dz.as_ref().filter(|_| self.dz_packed), dw.stored_inputs())
        else {
            return Ok(None);
        };
        replica.kernels.matmul.pack_into(&replica.gpu, dz, tex).map(Some)
    }

    /// The launches that fill this layer's input and weights textures from their buffers,
    /// before `forward` (the layer's forward product, whose A and B they are); none for
    /// layer 0, whose textures the gather fills.
    pub(super) fn packs(
        &self,
        replica: &Replica,
        l: usize,
        forward: &MatmulCall<'_>,
    ) -> Result<Vec<Dispatch>> {
        let (Some([a, b]), true) = (forward.stored_inputs(), l > 0) else { return Ok(Vec::new()) };
        let matmul = &replica.kernels.matmul;
        let input = self.input.as_ref().map(|tex| matmul.pack_into(&replica.gpu, a, tex));
        let weights = self.weights.as_ref().map(|tex| matmul.pack_into(&replica.gpu, b, tex));
        input.into_iter().chain(weights).collect()
    }
}

impl Replica {
    /// Whether the autotuner picks a texture variant for every `(call, A packed ahead)`.
    fn reads_textures(&self, calls: &[(&MatmulCall<'_>, bool)]) -> Result<bool> {
        for (call, a_packed) in calls {
            if !self.kernels.matmul_reads_textures(&self.gpu, call, *a_packed)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// How the layer below layer `l` takes the gradient of its output, when `l`'s backward
    /// computes one (`dense_below`).
    pub(super) fn output_grad_below(&self, l: usize) -> Option<OutputGrad<'_>> {
        let b = l.checked_sub(1).filter(|_| self.dense_below(l))?;
        Some(match self.spec.layers[b] {
            Layer::Dense { activation, .. } => self.dense_output_grad(b, activation),
            Layer::Dropout { .. } => self.dropout_output_grad(b),
        })
    }

    /// A texture for the gathered batch when the products that read it (layer 0's forward
    /// and, when training, its weight gradient) all run from textures on this device.
    pub(super) fn batch_texture(
        &self,
        sources: &GatherSources<'_>,
        rows: usize,
        train: bool,
    ) -> Result<Option<OperandTexture>> {
        let (g, k) = (&self.gpu, &self.kernels);
        if !k.gather.supports_texture(sources) {
            return Ok(None);
        }
        let Some(&Layer::Dense { activation, .. }) = self.spec.layers.first() else { return Ok(None) };
        let mut readers = vec![self.dense_forward_call(0, activation, rows)?];
        if train {
            readers.push(self.dense_weight_grad_call(0, rows)?);
        }
        for call in &readers {
            if !k.matmul_reads_textures(g, call, true)? {
                return Ok(None);
            }
        }
        k.matmul.operand_texture(g, rows, self.spec.inputs())
    }

    /// A texture for layer 0's weights, with their offset in the flat parameters, which the
    /// texture gather's launch of `rows` rows of `sources` packs for layer 0's forward (a
    /// texture product, as the batch's texture says): `None` unfused, or where the device's
    /// gather cannot pack them or they do not fit a texture.
    pub(super) fn first_weights_texture(
        &self,
        sources: &GatherSources<'_>,
        rows: usize,
    ) -> Result<Option<(usize, OperandTexture)>> {
        let Some(slots) = self.layout.of_layer(0).filter(|_| self.fuse) else { return Ok(None) };
        if !slots.weight.is_multiple_of(4)
            || !self.kernels.gather.packs_weights(&self.gpu, sources, rows, slots.inputs, slots.outputs)
        {
            return Ok(None);
        }
        let texture = self.kernels.matmul.operand_texture(&self.gpu, slots.inputs, slots.outputs)?;
        Ok(texture.map(|t| (slots.weight, t)))
    }

    /// A texture for `dZ` of the dense layer below layer `l`, which layer `l`'s one-launch
    /// backward writes when that layer's weight gradient runs a texture variant (the
    /// variant then needs no pack launch for it); `None` otherwise. `in_texture`: whether a
    /// layer reads its input from a texture.
    fn dz_texture(
        &self,
        l: usize,
        rows: usize,
        in_texture: impl Fn(usize) -> bool,
    ) -> Result<Option<OperandTexture>> {
        let Some(b) = l.checked_sub(1) else { return Ok(None) };
        let Some(Layer::Dense { .. }) = self.spec.layers.get(b) else { return Ok(None) };
        let (Some(above), Some(slots)) = (self.layout.of_layer(l), self.layout.of_layer(b)) else {
            return Ok(None);
        };
        // Layer l's backward must be the one launch, and able to write the texture.
        if !self.backward_in_one_launch(l, rows, in_texture(l))
            || !self.kernels.dense_backward.writes_texture(above.inputs)
        {
            return Ok(None);
        }
        // Layer b's must not be (it then runs its dW as a product), and that product a texture
        // variant (the one that product records: A from the input's texture where it has one).
        let b_x_texture = in_texture(b);
        if self.dense_below(b) && self.backward_in_one_launch(b, rows, b_x_texture) {
            return Ok(None);
        }
        let call = self.dense_weight_grad_call(b, rows)?;
        if !self.kernels.matmul_reads_textures(&self.gpu, &call, b_x_texture)? {
            return Ok(None);
        }
        self.kernels.matmul.operand_texture(&self.gpu, rows, slots.outputs)
    }
}
