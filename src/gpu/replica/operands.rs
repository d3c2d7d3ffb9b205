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

/// What fills a shared texture, once per pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// The gather's launch: the batch, and layer 0's weights.
    Gather,
    /// A pack launch of its own from the operand's buffer, before the first product that
    /// reads it: a layer's input and weights before its forward, `dz` before its backward.
    Pack,
    /// The one-launch backward of the layer above (`dz`).
    Above,
}

/// A texture holding an operand as stored, and what fills it.
#[derive(Debug)]
pub(super) struct Shared {
    pub texture: OperandTexture,
    pub fill: Fill,
}

/// A dense layer's operands in textures (see the header). `None`: its products read the
/// buffer, or pack it for themselves.
#[derive(Debug, Default)]
pub(super) struct LayerTextures {
    /// The layer's input, `[rows, inputs]`: the batch for layer 0, `a_{l-1}` above it.
    pub input: Option<Shared>,
    /// `W_l`, `[inputs, outputs]`.
    pub weights: Option<Shared>,
    /// `dz_l`, `[rows, outputs]`.
    pub dz: Option<Shared>,
    /// Whether the input gradient's product reads `dz` from its texture.
    pub dx_reads_dz: bool,
}

fn texture(shared: &Option<Shared>) -> Option<&OperandTexture> {
    shared.as_ref().map(|s| &s.texture)
}

fn packed(texture: Option<OperandTexture>) -> Option<Shared> {
    texture.map(|texture| Shared { texture, fill: Fill::Pack })
}

impl LayerTextures {
    /// The textures of a pass's layers: the batch's and layer 0's weights as the gather
    /// fills them, and when training with fused launches the rest of the header's.
    pub(super) fn for_pass(
        replica: &Replica,
        rows: usize,
        train: bool,
        batch: Option<OperandTexture>,
        first_weights: Option<OperandTexture>,
    ) -> Result<Vec<LayerTextures>> {
        let mut t: Vec<LayerTextures> =
            replica.spec.layers.iter().map(|_| LayerTextures::default()).collect();
        let by_gather = |texture| Shared { texture, fill: Fill::Gather };
        let batch_texture = batch.is_some();
        t[0].input = batch.map(by_gather);
        t[0].weights = first_weights.map(by_gather);
        if !(replica.fuse && train) {
            return Ok(t);
        }
        // The last layer of a fused softmax head runs its forward in the head's launch.
        let planner = Planner { r: replica, rows, head: replica.fused_head(rows, batch_texture) };
        planner.inputs(&mut t)?;
        planner.dz_from_above(&mut t)?;
        planner.dz_for_dx(&mut t)?;
        planner.weights(&mut t)?;
        Ok(t)
    }

    /// The layer's input texture.
    pub(super) fn input(&self) -> Option<&OperandTexture> {
        texture(&self.input)
    }

    /// The layer's weights texture.
    pub(super) fn weights(&self) -> Option<&OperandTexture> {
        texture(&self.weights)
    }

    /// The layer's `dz` texture.
    pub(super) fn dz(&self) -> Option<&OperandTexture> {
        texture(&self.dz)
    }

    /// The `dz` texture that the one-launch backward of the layer above writes.
    pub(super) fn dz_from_above(&self) -> Option<&OperandTexture> {
        self.dz.as_ref().filter(|s| s.fill == Fill::Above).map(|s| &s.texture)
    }

    /// The launches that fill this layer's input and weights textures from their buffers,
    /// before `forward` (the layer's forward product, whose A and B they are).
    pub(super) fn forward_packs(&self, replica: &Replica, forward: &MatmulCall<'_>) -> Result<Vec<Dispatch>> {
        let Some([a, b]) = forward.stored_inputs() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (shared, operand) in [(&self.input, a), (&self.weights, b)] {
            if let Some(s) = shared.as_ref().filter(|s| s.fill == Fill::Pack) {
                out.push(replica.kernels.matmul.pack_into(&replica.gpu, operand, &s.texture)?);
            }
        }
        Ok(out)
    }

    /// The launch that fills this layer's `dz` texture from its buffer before its backward,
    /// where one does (`dw`: the layer's weight-gradient product, whose B it is).
    pub(super) fn dz_pack(&self, replica: &Replica, dw: &MatmulCall<'_>) -> Result<Option<Dispatch>> {
        let Some(s) = self.dz.as_ref().filter(|s| s.fill == Fill::Pack) else { return Ok(None) };
        let Some([_, dz]) = dw.stored_inputs() else { return Ok(None) };
        replica.kernels.matmul.pack_into(&replica.gpu, dz, &s.texture).map(Some)
    }
}

/// Plans a fused training pass's textures past the gather's, one kind of operand at a time.
struct Planner<'a> {
    r: &'a Replica,
    rows: usize,
    /// Whether the last layer's forward runs in the fused softmax head's launch.
    head: bool,
}

impl Planner<'_> {
    /// Dense layer `l`'s forward product, unless the fused head runs it.
    fn forward_call(&self, l: usize) -> Result<Option<MatmulCall<'_>>> {
        let last = self.r.spec.layers.len() - 1;
        match self.r.spec.layers[l] {
            Layer::Dense { activation, .. } if !(self.head && l == last) => {
                self.r.dense_forward_call(l, activation, self.rows).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Whether dense layer `l`'s backward is the one launch that reads its operands from
    /// buffers (only with a dense layer below; `input`: it reads its input from a texture).
    fn one_launch(&self, l: usize, input: bool) -> bool {
        self.r.dense_below(l) && self.r.backward_in_one_launch(l, self.rows, input)
    }

    /// Inputs above layer 0, packed before the forward, read by it and by dW (priced with A
    /// packed, as both are then recorded).
    fn inputs(&self, t: &mut [LayerTextures]) -> Result<()> {
        let (r, rows) = (self.r, self.rows);
        for (l, layer) in t.iter_mut().enumerate().skip(1) {
            let Some(forward) = self.forward_call(l)? else { continue };
            if self.one_launch(l, false) {
                continue;
            }
            let dw = r.dense_weight_grad_call(l, rows)?;
            if r.reads_textures(&[(&forward, true), (&dw, true)])? {
                layer.input = packed(r.kernels.matmul.operand_texture(&r.gpu, rows, forward.k)?);
            }
        }
        Ok(())
    }

    /// dz written by the one-launch backward of the layer above, read by dW.
    fn dz_from_above(&self, t: &mut [LayerTextures]) -> Result<()> {
        for l in 1..t.len() {
            let in_texture = |layer: usize| t[layer].input.is_some();
            if let Some(texture) = self.r.dz_texture(l, self.rows, in_texture)? {
                t[l - 1].dz = Some(Shared { texture, fill: Fill::Above });
            }
        }
        Ok(())
    }

    /// dz for dX's product too (A, priced packed); packed before dW where nothing above
    /// writes it, when dW reads it from a texture too (a pack for dX alone saves nothing).
    fn dz_for_dx(&self, t: &mut [LayerTextures]) -> Result<()> {
        let (r, rows) = (self.r, self.rows);
        for (l, layer) in t.iter_mut().enumerate().skip(1) {
            let Some(below) = r.output_grad_below(l) else { continue };
            let dense = matches!(r.spec.layers[l], Layer::Dense { .. });
            if !dense || self.one_launch(l, layer.input.is_some()) {
                continue;
            }
            let dw = r.dense_weight_grad_call(l, rows)?;
            // Without a dz texture, one is packed only where dW reads it too (priced as recorded).
            if layer.dz.is_none() && !r.reads_textures(&[(&dw, layer.input.is_some())])? {
                continue;
            }
            let dx = r.dense_input_grad_call(l, rows, &below)?;
            if !r.reads_textures(&[(&dx, true)])? {
                continue;
            }
            if layer.dz.is_none() {
                layer.dz = packed(r.kernels.matmul.operand_texture(&r.gpu, rows, dw.n)?);
            }
            layer.dx_reads_dz = layer.dz.is_some();
        }
        Ok(())
    }

    /// Weights above layer 0, packed before the forward, read by it and by dX (each priced
    /// with A as it is recorded).
    fn weights(&self, t: &mut [LayerTextures]) -> Result<()> {
        let (r, rows) = (self.r, self.rows);
        for (l, layer) in t.iter_mut().enumerate().skip(1) {
            let Some(forward) = self.forward_call(l)? else { continue };
            let Some(below) = r.output_grad_below(l) else { continue };
            if self.one_launch(l, layer.input.is_some()) {
                continue;
            }
            let dx = r.dense_input_grad_call(l, rows, &below)?;
            if r.reads_textures(&[(&forward, layer.input.is_some()), (&dx, layer.dx_reads_dz)])? {
                layer.weights = packed(r.kernels.matmul.operand_texture(&r.gpu, forward.k, forward.n)?);
            }
        }
        Ok(())
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

    /// A texture for `dZ` of the dense layer `b` below layer `l`, which layer `l`'s
    /// one-launch backward writes when layer `b`'s weight gradient runs a texture variant
    /// (that variant then needs no pack launch for it); `None` otherwise. `in_texture`:
    /// whether a layer reads its input from a texture.
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
