//! The graph of one pass recorded as dispatches, once per (source, rows, kind): gather,
//! forward products with their fused epilogues, the fused loss, backward products, bias
//! gradients and the optimizer. Replayed every step with no host work but two small copies.

use super::{Replica, SourceId, EVAL_SLOT, TRAIN_SLOT};
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    Dispatch, GatherSources, GatherStep, MatmulCall, OperandTexture, OptimBuffers, XentCall,
};
use crate::ops::MatmulForm;
use crate::spec::Activation;

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
    /// The plan for `rows`-row launches of `source` starting at `starts`, recorded on first use.
    pub(crate) fn plan(
        &mut self,
        source: impl Into<Option<SourceId>>,
        rows: usize,
        kind: PassKind,
        scale_rows: usize,
        starts: &[u32],
    ) -> Result<usize> {
        let source = source.into();
        if let Some(i) = self.plans.iter().position(|p| {
            p.source == source
                && p.rows == rows
                && p.kind == kind
                && p.scale_rows == scale_rows
                && p.starts.size() as usize == (starts.len() * 16).max(16)
        }) {
            self.write_starts(i, starts);
            return Ok(i);
        }
        let steps: Vec<GatherStep> = starts.iter().map(|&start| GatherStep { start, pad: [0; 3] }).collect();
        let starts_buf = self.gpu.upload("gather starts", &steps, wgpu::BufferUsages::COPY_SRC)?;
        let dispatches = self.record(source, rows, kind, scale_rows)?;
        self.plans.push(Plan { source, rows, kind, scale_rows, starts: starts_buf, dispatches });
        Ok(self.plans.len() - 1)
    }

    fn write_starts(&self, plan: usize, starts: &[u32]) {
        let steps: Vec<GatherStep> = starts.iter().map(|&start| GatherStep { start, pad: [0; 3] }).collect();
        self.gpu.write(&self.plans[plan].starts, 0, bytemuck::cast_slice(&steps));
    }

    /// Records the dispatches of one pass over `rows` rows: gather, forward, loss, and for
    /// training backward and the optimizer. Shapes in comments are per layer l.
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
        let (g, k, w) = (&self.gpu, &self.kernels, &self.work);
        let mut out = Vec::new();
        // x: [rows, inputs] f32, y: [rows] u32, gathered on the device or written by the host.
        // When every product that reads x runs from textures, the gather writes x straight
        // into one, and neither product packs it again.
        let mut x_texture = None;
        if let Some(source) = source {
            let src = &self.sources[source.0];
            let sources = GatherSources {
                pixels: &src.data.pixels,
                words: src.data.words,
                features: src.data.features,
                labels: &src.data.labels,
                perm: &src.indices.buffer,
                lut: &self.lut,
                step: &self.gather_step,
            };
            x_texture = self.batch_texture(&sources, rows, train)?;
            out.push(match &x_texture {
                Some(t) => k.gather.record_texture(g, rows, &sources, t, &w.y)?,
                None => k.gather.record(g, rows, &sources, (&w.x, 0), &w.y)?,
            });
        }
        let last = self.layout.layers.len() - 1;
        for l in 0..self.layout.layers.len() {
            // z_l = a_{l-1} W_l + b_l: [rows, outputs]; h_l = act(z_l)
            let call = self.forward_call(l, rows);
            out.push(k.matmul_with(g, &call, if l == 0 { x_texture.as_ref() } else { None })?);
        }
        let classes = self.spec.outputs();
        // dlogits = (softmax - onehot) / rows: [rows, classes]; metrics += (loss sum, correct)
        out.push(k.xent.record(
            g,
            &XentCall {
                rows,
                classes,
                logits: (&w.h[last], 0),
                labels: (&w.y, 0),
                dlogits: train.then_some((&w.dz[last], 0)),
                scale: 1.0 / scale_rows as f32,
                metrics: (&self.metrics, if train { TRAIN_SLOT } else { EVAL_SLOT }),
            },
        )?);
        if !train {
            return Ok(out);
        }
        for (l, slots) in self.layout.layers.iter().enumerate().rev() {
            // dW_l = a_{l-1}^T dz_l: [inputs, outputs]
            let dw = self.weight_grad_call(l, rows);
            out.push(k.matmul_with(g, &dw, if l == 0 { x_texture.as_ref() } else { None })?);
            // db_l = column sums of dz_l: [outputs]
            out.push(k.reduce.column_sums(
                g,
                rows,
                slots.outputs,
                (&w.dz[l], 0),
                (&self.grads, slots.bias),
            )?);
            if l > 0 {
                // dz_{l-1} = (dz_l W_l^T) * act'_{l-1}(z_{l-1}): [rows, inputs]
                let prev = self.spec.activations[l - 1];
                let z_prev = if prev == Activation::Identity { &w.h[l - 1] } else { &w.z[l - 1] };
                let call = MatmulCall {
                    form: MatmulForm::ABt,
                    m: rows,
                    n: slots.inputs,
                    k: slots.outputs,
                    a: (&w.dz[l], 0),
                    b: (&self.params, slots.weight),
                    c: (&w.dz[l - 1], 0),
                    bias: None,
                    act: prev,
                    z: Some((z_prev, 0)),
                    act_backward: true,
                };
                out.push(k.matmul(g, &call)?);
            }
        }
        if kind == PassKind::Train {
            out.push(self.record_update()?);
        }
        Ok(out)
    }

    /// Layer `l`'s forward product over `rows` rows: `z_l = a_{l-1} W_l + b_l`, `h_l = act(z_l)`
    /// (z kept for backward when the activation needs it).
    fn forward_call(&self, l: usize, rows: usize) -> MatmulCall<'_> {
        let (w, slots) = (&self.work, &self.layout.layers[l]);
        let act = self.spec.activations[l];
        let last = self.layout.layers.len() - 1;
        MatmulCall {
            form: MatmulForm::AB,
            m: rows,
            n: slots.outputs,
            k: slots.inputs,
            a: (if l == 0 { &w.x } else { &w.h[l - 1] }, 0),
            b: (&self.params, slots.weight),
            c: (&w.h[l], 0),
            bias: Some(slots.bias),
            act,
            z: (l < last && act != Activation::Identity).then_some((&w.z[l], 0)),
            act_backward: false,
        }
    }

    /// Layer `l`'s weight gradient over `rows` rows: `dW_l = a_{l-1}^T dz_l`.
    fn weight_grad_call(&self, l: usize, rows: usize) -> MatmulCall<'_> {
        let (w, slots) = (&self.work, &self.layout.layers[l]);
        let input = if l == 0 { &w.x } else { &w.h[l - 1] };
        MatmulCall {
            c: (&self.grads, slots.weight),
            ..MatmulCall::plain(
                MatmulForm::AtB,
                slots.inputs,
                slots.outputs,
                rows,
                input,
                &w.dz[l],
                &self.grads,
            )
        }
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
        let mut readers = vec![self.forward_call(0, rows)];
        if train {
            readers.push(self.weight_grad_call(0, rows));
        }
        for call in &readers {
            if !k.matmul_prefers_packed_a(g, call)? {
                return Ok(None);
            }
        }
        k.matmul.operand_texture(g, rows, self.spec.inputs())
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
