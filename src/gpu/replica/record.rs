//! The graph of one pass recorded as dispatches, once per (source, rows, kind): gather,
//! forward products with their fused epilogues, the fused loss (with the last product when
//! the softmax head is narrow: `head.rs`), backward products with the bias gradients in the
//! same launches (a narrow layer's whole backward in one: `layers/dense.rs`), and the optimizer. Replayed every step with no host work but two small copies.

use super::{Replica, SourceId};
use crate::error::{Error, Result};
use crate::gpu::device_data::DeviceFeatures;
use crate::gpu::kernels::{
    Dispatch, GatherSources, GatherStep, OperandTexture, OptimBuffers, Packed, TargetSources, ValueSources,
    WeightPack,
};
use crate::spec::Layer;

/// What a recorded pass does after the forward pass and the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassKind {
    /// Backward and the optimizer: a whole training step.
    Train,
    /// Backward only: gradients for a data-parallel reduction.
    Grads,
    /// Nothing: evaluation.
    Eval,
}

/// A batch's gather launches, with the textures they fill when the first layer's products
/// run from textures: the batch (`x_texture`), and layer 0's weights with their offset in the
/// flat parameters (`w0_texture`).
struct Gathered {
    out: Vec<Dispatch>,
    x_texture: Option<OperandTexture>,
    w0_texture: Option<(usize, OperandTexture)>,
}

/// A recorded pass over some rows of a source.
pub(super) struct Plan {
    /// `None`: the batch is written by the host (no gather).
    pub(super) source: Option<SourceId>,
    pub(super) rows: usize,
    pub(super) kind: PassKind,
    /// The gradient is that of `loss sum / scale_rows`.
    pub(super) scale_rows: usize,
    /// GatherStep per launch of this plan, copied into the gather uniform before each.
    pub(super) starts: wgpu::Buffer,
    pub(super) dispatches: Vec<Dispatch>,
}

impl Replica {
    /// The plan for `rows`-row launches of `source`, one per entry of `starts` (where each
    /// starts in the source's order, and the step and row base its dropout masks are drawn
    /// for), recorded on first use.
    pub(crate) fn plan(
        &mut self,
        source: impl Into<Option<SourceId>>,
        rows: usize,
        kind: PassKind,
        scale_rows: usize,
        starts: &[GatherStep],
    ) -> Result<usize> {
        let source = source.into();
        if let Some(i) = self.plans.iter().position(|p| {
            p.source == source
                && p.rows == rows
                && p.kind == kind
                && p.scale_rows == scale_rows
                && p.starts.size() as usize == (starts.len() * 16).max(16)
        }) {
            self.gpu.write(&self.plans[i].starts, 0, bytemuck::cast_slice(starts));
            return Ok(i);
        }
        let starts_buf = self.gpu.upload("gather starts", starts, wgpu::BufferUsages::COPY_SRC)?;
        let dispatches = self.record(source, rows, kind, scale_rows)?;
        self.plans.push(Plan { source, rows, kind, scale_rows, starts: starts_buf, dispatches });
        Ok(self.plans.len() - 1)
    }

    /// Records the dispatches of one pass over `rows` rows: gather, forward, loss, and for
    /// training backward and the optimizer.
    fn record(
        &self,
        source: Option<SourceId>,
        rows: usize,
        kind: PassKind,
        scale_rows: usize,
    ) -> Result<Vec<Dispatch>> {
        let train = kind != PassKind::Eval;
        if rows > self.work.rows {
            return Err(Error::Shape(format!("{rows} rows exceed the workspace of {}", self.work.rows)));
        }
        let Gathered { mut out, x_texture, w0_texture } = match source {
            Some(source) => self.record_gather(source, rows, train)?,
            None => Gathered { out: Vec::new(), x_texture: None, w0_texture: None },
        };
        // The first layer reads the batch, from its texture when there is one.
        let input_texture = |l: usize| if l == 0 { x_texture.as_ref() } else { None };
        // A narrow softmax head records the last layer's forward with the loss (head.rs).
        let head = self.fused_head(rows, x_texture.is_some());
        let last = self.spec.layers.len() - 1;
        for (l, layer) in self.spec.layers.iter().enumerate() {
            if head && l == last {
                continue;
            }
            out.push(match *layer {
                Layer::Dense { activation, .. } => {
                    let b = if l == 0 { w0_texture.as_ref().map(|(_, t)| t) } else { None };
                    self.dense_forward(l, activation, rows, Packed { a: input_texture(l), b })?
                }
                Layer::Dropout { .. } => self.dropout_forward(l, rows, train)?,
            });
        }
        if head {
            // logits = h W + b and the softmax cross-entropy in one launch (head.rs)
            out.push(self.record_head(rows, train, scale_rows)?);
        } else {
            // The batch's targets are f32 (in yv) when its source holds them; labels otherwise.
            let f32_targets = source.is_some_and(|s| self.sources[s.0].data.targets.is_some());
            out.push(self.record_loss(rows, train, scale_rows, f32_targets)?);
        }
        if !train {
            return Ok(out);
        }
        self.record_backward(rows, x_texture.as_ref(), &mut out)?;
        if kind == PassKind::Train {
            out.push(self.record_update()?);
        }
        Ok(out)
    }

    /// The batch's gather from `source`: x: [rows, inputs] f32 and y: [rows] u32 (yv: [rows,
    /// outputs] f32 regression targets beside them). When every product that reads x runs
    /// from textures, the gather writes x straight into one (and neither product packs it
    /// again) and packs layer 0's weights for its texture product in the same launch.
    fn record_gather(&self, source: SourceId, rows: usize, train: bool) -> Result<Gathered> {
        let (g, k, w) = (&self.gpu, &self.kernels, &self.work);
        let src = &self.sources[source.0];
        let mut gathered = Gathered { out: Vec::new(), x_texture: None, w0_texture: None };
        match &src.data.features_data {
            DeviceFeatures::Pixels { buffer, words } => {
                let sources = GatherSources {
                    pixels: buffer,
                    words: *words,
                    features: src.data.features,
                    labels: &src.data.labels,
                    perm: &src.indices.buffer,
                    lut: &self.lut,
                    step: &self.gather_step,
                };
                gathered.x_texture = self.batch_texture(&sources, rows, train)?;
                if gathered.x_texture.is_some() {
                    gathered.w0_texture = self.first_weights_texture(&sources, rows)?;
                }
                let pack = gathered.w0_texture.as_ref().map(|(offset, texture)| WeightPack {
                    buffer: &self.params,
                    offset: *offset,
                    texture,
                });
                gathered.out.push(match &gathered.x_texture {
                    Some(t) => k.gather.record_texture(g, rows, &sources, t, &w.y, pack)?,
                    None => k.gather.record(g, rows, &sources, (&w.x, 0), &w.y)?,
                });
            }
            DeviceFeatures::Values { buffer } => {
                let sources = ValueSources {
                    values: buffer,
                    features: src.data.features,
                    labels: &src.data.labels,
                    perm: &src.indices.buffer,
                    step: &self.gather_step,
                };
                gathered.out.push(k.gather_values.record(g, rows, &sources, (&w.x, 0), &w.y)?);
            }
        }
        if let Some((targets, outputs)) = &src.data.targets {
            let sources = TargetSources {
                targets,
                outputs: *outputs,
                perm: &src.indices.buffer,
                step: &self.gather_step,
            };
            gathered.out.push(k.gather_targets.record(g, rows, &sources, &w.yv)?);
        }
        Ok(gathered)
    }

    /// The backward pass, last layer first, appended to `out`: each dense layer's weight and
    /// bias gradients and the gradient of the layer below's output (a dropout layer's mask
    /// applied to it). `x_texture`: the batch in a texture, for layer 0's weight gradient.
    fn record_backward(
        &self,
        rows: usize,
        x_texture: Option<&OperandTexture>,
        out: &mut Vec<Dispatch>,
    ) -> Result<()> {
        let input_texture = |l: usize| if l == 0 { x_texture } else { None };
        // dZ of layer l in a texture, written by the backward of the layer above (for layer
        // l's weight gradient when it runs a texture variant: `dz_texture`).
        let mut dz_textures: Vec<Option<OperandTexture>> = self.spec.layers.iter().map(|_| None).collect();
        for (l, layer) in self.spec.layers.iter().enumerate().rev() {
            // The layer below says how it takes the gradient of its output (`dense_below`).
            let below = l.checked_sub(1).filter(|_| self.dense_below(l)).map(|b| match self.spec.layers[b] {
                Layer::Dense { activation, .. } => self.dense_output_grad(b, activation),
                Layer::Dropout { .. } => self.dropout_output_grad(b),
            });
            match *layer {
                Layer::Dense { .. } => {
                    // The layer below's dZ straight into the texture its weight gradient reads.
                    let dz_below = match below {
                        Some(_) => self.dz_texture(l, rows, x_texture.is_some())?,
                        None => None,
                    };
                    let packed = Packed { a: input_texture(l), b: dz_textures[l].as_ref() };
                    out.extend(self.dense_backward(l, rows, packed, below, dz_below.as_ref())?);
                    if let Some(t) = dz_below {
                        dz_textures[l - 1] = Some(t);
                    }
                }
                Layer::Dropout { .. } => {
                    if let Some(below) = below {
                        out.push(self.dropout_backward(l, rows, below)?);
                    }
                }
            }
        }
        Ok(())
    }

    /// A texture for the gathered batch when the products that read it (layer 0's forward
    /// and, when training, its weight gradient) all run from textures on this device.
    fn batch_texture(
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
    fn first_weights_texture(
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
    /// variant then needs no pack launch for it); `None` otherwise. `batch_texture`: whether
    /// layer 0 reads the batch from a texture.
    fn dz_texture(&self, l: usize, rows: usize, batch_texture: bool) -> Result<Option<OperandTexture>> {
        let Some(b) = l.checked_sub(1) else { return Ok(None) };
        let Some(Layer::Dense { .. }) = self.spec.layers.get(b) else { return Ok(None) };
        let (Some(above), Some(slots)) = (self.layout.of_layer(l), self.layout.of_layer(b)) else {
            return Ok(None);
        };
        // Layer l's backward must be the one launch, and able to write the texture.
        let in_texture = |layer: usize| layer == 0 && batch_texture;
        if !self.backward_in_one_launch(l, rows, in_texture(l))
            || !self.kernels.dense_backward.writes_texture(above.inputs)
        {
            return Ok(None);
        }
        // Layer b's must not be (it then runs its dW as a product), and that product a texture
        // variant (the one that product records: A from the batch's texture for layer 0).
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

    /// Whether a dense layer lies below layer `l`: then `l`'s backward computes the gradient
    /// of its input (none is computed where only data and parameter-free layers lie below).
    fn dense_below(&self, l: usize) -> bool {
        self.spec.layers[..l].iter().any(|b| matches!(b, Layer::Dense { .. }))
    }

    /// The optimizer dispatch over the whole flat buffer.
    pub(super) fn record_update(&self) -> Result<Dispatch> {
        let buffers = OptimBuffers {
            params: &self.params,
            grads: &self.grads,
            m: &self.m,
            v: &self.v,
            step: &self.optim_step,
        };
        self.kernels.optim.record(&self.gpu, &self.optimizer, self.layout.len, &buffers)
    }

    /// Dispatches per training step (for reports).
    pub fn dispatches_per_step(&self) -> usize {
        self.plans
            .iter()
            .find(|p| p.kind == PassKind::Train)
            .map_or(0, |p| p.dispatches.iter().map(Dispatch::launches).sum())
    }
}
