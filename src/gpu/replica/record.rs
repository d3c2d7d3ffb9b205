//! The graph of one pass recorded as dispatches, once per (source, rows, kind): gather,
//! forward products with their fused epilogues, the fused loss (with the last product when
//! the softmax head is narrow: `head.rs`), backward products with the bias gradients in the
//! same launches (a narrow layer's whole backward in one: `layers/dense.rs`), and the
//! optimizer, with each operand that texture products share packed once (`operands.rs`).
//! Replayed every step with no host work but two small copies.

use super::layers::dense::BackwardTextures;
use super::operands::LayerTextures;
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
        // A narrow softmax head records the last layer's forward with the loss (head.rs).
        let head = self.fused_head(rows, x_texture.is_some());
        let textures = LayerTextures::for_pass(self, rows, train, x_texture, w0_texture.map(|(_, t)| t))?;
        let last = self.spec.layers.len() - 1;
        for (l, (layer, t)) in self.spec.layers.iter().zip(&textures).enumerate() {
            if head && l == last {
                continue;
            }
            match *layer {
                Layer::Dense { activation, .. } => {
                    let call = self.dense_forward_call(l, activation, rows)?;
                    out.extend(t.forward_packs(self, &call)?);
                    let packed = Packed { a: t.input(), b: t.weights() };
                    out.push(self.kernels.matmul_with(&self.gpu, &call, packed)?);
                }
                Layer::Dropout { .. } => out.push(self.dropout_forward(l, rows, train)?),
            }
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
        self.record_backward(rows, &textures, &mut out)?;
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
    /// applied to it), with the operands `textures` holds read from there.
    fn record_backward(
        &self,
        rows: usize,
        textures: &[LayerTextures],
        out: &mut Vec<Dispatch>,
    ) -> Result<()> {
        for (l, (layer, t)) in self.spec.layers.iter().zip(textures).enumerate().rev() {
            let below = self.output_grad_below(l);
            match *layer {
                Layer::Dense { .. } => {
                    out.extend(t.dz_pack(self, &self.dense_weight_grad_call(l, rows)?)?);
                    // dX reads dz from its texture where the plan says so; the one-launch
                    // backward writes the layer below's dz into the texture its dW reads.
                    let dx_a = t.dz().filter(|_| t.dx_reads_dz);
                    let dx_out = match l.checked_sub(1) {
                        Some(b) => textures[b].dz_from_above(),
                        None => None,
                    };
                    let bt = BackwardTextures {
                        dw: Packed { a: t.input(), b: t.dz() },
                        dx: Packed { a: dx_a, b: t.weights() },
                        dx_out,
                    };
                    out.extend(self.dense_backward(l, rows, below, bt)?);
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

    /// Whether a dense layer lies below layer `l`: then `l`'s backward computes the gradient
    /// of its input (none is computed where only data and parameter-free layers lie below).
    pub(super) fn dense_below(&self, l: usize) -> bool {
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
