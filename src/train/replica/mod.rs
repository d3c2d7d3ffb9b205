//! One model on one device: flat parameter, gradient and moment buffers, the activation
//! workspace, and recorded step plans that replay a whole training step (gather, forward,
//! fused softmax cross-entropy, backward, optimizer) without the host.
//!
//! Per step the only host work is encoding two 16-32 byte buffer copies (which batch, which
//! bias correction) and the recorded dispatches; an epoch is submitted in chunks with no
//! wait, and its loss and accuracy accumulate on the device and are read back once.

use std::sync::Arc;

mod profile;

pub use profile::{KernelTimer, StepProfile};

use super::device_data::{DeviceDataset, DeviceIndices};
use crate::data::Dataset;
use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels::{
    pixel_lut_buffer, Dispatch, GatherSources, GatherStep, Kernels, MatmulCall, OptimBuffers, StepUniform,
    XentCall,
};
use crate::model::{Activation, MlpSpec, ParamLayout};
use crate::ops::MatmulForm;
use crate::optim::Optimizer;

/// Steps recorded into one command buffer before it is submitted: enough to amortise the
/// submission, few enough that the GPU starts working early in the epoch.
const STEPS_PER_SUBMIT: usize = 16;

/// Submissions allowed in flight before the host waits for the oldest. Keeps the device
/// fed (two more are queued behind the one running) while giving progress reports and
/// cancellation a bound of a few dozen steps, and the host's memory a bound too.
const MAX_IN_FLIGHT: usize = 3;

/// Called between submissions with the number of launches known to be complete; an error
/// (a cancellation) stops further submissions.
pub type ChunkHook<'a> = &'a mut dyn FnMut(usize) -> Result<()>;

/// Metrics slots: `[train loss sum, train correct, eval loss sum, eval correct]`.
pub(crate) const TRAIN_SLOT: usize = 0;
pub(crate) const EVAL_SLOT: usize = 2;

/// Which rows a pass reads: a resident dataset and an index order over it.
pub struct Source {
    pub(crate) data: Arc<DeviceDataset>,
    pub(crate) indices: DeviceIndices,
}

/// Handle to a [`Source`] registered with a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceId(usize);

/// Per-layer activation buffers, sized for `rows` rows.
struct Workspace {
    rows: usize,
    /// Batch inputs [rows, inputs] and u32 labels [rows].
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    /// Pre-activation, activation and pre-activation gradient of each layer: [rows, outputs].
    z: Vec<wgpu::Buffer>,
    h: Vec<wgpu::Buffer>,
    dz: Vec<wgpu::Buffer>,
}

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
struct Plan {
    /// `None`: the batch is written by the host (no gather).
    source: Option<SourceId>,
    rows: usize,
    kind: PassKind,
    /// The gradient is that of `loss sum / scale_rows`.
    scale_rows: usize,
    /// GatherStep per launch of this plan, copied into the gather uniform before each.
    starts: wgpu::Buffer,
    dispatches: Vec<Dispatch>,
}

/// The model mirrored on one device.
pub struct Replica {
    /// The device this replica lives on.
    pub gpu: Gpu,
    /// Its pipelines and matmul autotuner.
    pub kernels: Kernels,
    spec: MlpSpec,
    layout: ParamLayout,
    optimizer: Optimizer,
    pub(crate) params: wgpu::Buffer,
    pub(crate) grads: wgpu::Buffer,
    m: wgpu::Buffer,
    v: wgpu::Buffer,
    best: wgpu::Buffer,
    gather_step: wgpu::Buffer,
    optim_step: wgpu::Buffer,
    optim_schedule: wgpu::Buffer,
    schedule_len: usize,
    metrics: wgpu::Buffer,
    lut: wgpu::Buffer,
    work: Workspace,
    sources: Vec<Source>,
    plans: Vec<Plan>,
    /// The optimizer dispatch on its own, for data-parallel steps.
    update: Option<Dispatch>,
}

fn uniform_buffer(gpu: &Gpu, label: &str, size: u64) -> Result<wgpu::Buffer> {
    gpu.scoped(&format!("creating `{label}`"), || {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })
}

fn floats(gpu: &Gpu, label: &str, len: usize) -> Result<wgpu::Buffer> {
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    gpu.storage_buffer(label, (len.max(4) * 4) as u64, usage)
}

impl Workspace {
    fn new(gpu: &Gpu, spec: &MlpSpec, rows: usize) -> Result<Self> {
        let per_layer = |name: &str| -> Result<Vec<wgpu::Buffer>> {
            spec.sizes[1..].iter().map(|&out| floats(gpu, name, rows * out)).collect()
        };
        Ok(Workspace {
            rows,
            x: floats(gpu, "batch x", rows * spec.inputs())?,
            y: floats(gpu, "batch labels", rows)?,
            z: per_layer("pre-activation")?,
            h: per_layer("activation")?,
            dz: per_layer("pre-activation gradient")?,
        })
    }
}

impl Replica {
    /// Uploads `params` (laid out as `spec.layout()`) and builds every pipeline on `gpu`.
    /// `max_rows` bounds the rows of any pass (batch size, evaluation chunk).
    pub fn new(
        gpu: Gpu,
        spec: &MlpSpec,
        optimizer: Optimizer,
        params: &[f32],
        max_rows: usize,
    ) -> Result<Self> {
        spec.validate()?;
        optimizer.validate()?;
        let layout = spec.layout();
        if params.len() != layout.len {
            return Err(Error::Shape(format!(
                "{} parameters given, the model has {}",
                params.len(),
                layout.len
            )));
        }
        if max_rows == 0 {
            return Err(Error::Shape("a pass needs at least one row".into()));
        }
        let kernels = Kernels::new(&gpu)?;
        let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let replica = Replica {
            params: gpu.upload("params", params, usage)?,
            grads: floats(&gpu, "grads", layout.len)?,
            m: floats(&gpu, "adam m", layout.len)?,
            v: floats(&gpu, "adam v", layout.len)?,
            best: floats(&gpu, "best params", layout.len)?,
            gather_step: uniform_buffer(&gpu, "gather step", 16)?,
            optim_step: uniform_buffer(&gpu, "optimizer step", 32)?,
            optim_schedule: floats(&gpu, "optimizer schedule", 8)?,
            schedule_len: 0,
            metrics: floats(&gpu, "metrics", 4)?,
            lut: pixel_lut_buffer(&gpu)?,
            work: Workspace::new(&gpu, spec, max_rows)?,
            sources: Vec::new(),
            plans: Vec::new(),
            update: None,
            spec: spec.clone(),
            layout,
            optimizer,
            kernels,
            gpu,
        };
        let mut replica = replica;
        replica.update = Some(replica.record_update()?);
        Ok(replica)
    }

    /// The model's description.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// Registers a dataset and an index order over it for later passes.
    pub fn add_source(&mut self, data: Arc<DeviceDataset>, indices: DeviceIndices) -> Result<SourceId> {
        if data.features != self.spec.inputs() {
            return Err(Error::Shape(format!(
                "the data has {} features, the model takes {}",
                data.features,
                self.spec.inputs()
            )));
        }
        self.sources.push(Source { data, indices });
        Ok(SourceId(self.sources.len() - 1))
    }

    /// Replaces every source with the training rows `train_idx` of `data` and, when given,
    /// the validation rows of a validation set (uploaded once, or shared with `data` when it
    /// is the same dataset). Returns the training and validation source ids.
    pub fn load_sources(
        &mut self,
        data: &Dataset,
        train_idx: &[u32],
        val: Option<(&Dataset, &[u32])>,
    ) -> Result<(SourceId, Option<SourceId>)> {
        self.truncate_sources(0);
        let gpu = self.gpu.clone();
        let resident = Arc::new(DeviceDataset::upload(&gpu, data)?);
        let train =
            self.add_source(Arc::clone(&resident), DeviceIndices::upload(&gpu, train_idx, data.len())?)?;
        let val = match val {
            Some((vdata, idx)) if !idx.is_empty() => {
                let vres = if std::ptr::eq(vdata, data) {
                    resident
                } else {
                    Arc::new(DeviceDataset::upload(&gpu, vdata)?)
                };
                Some(self.add_source(vres, DeviceIndices::upload(&gpu, idx, vdata.len())?)?)
            }
            _ => None,
        };
        Ok((train, val))
    }

    /// Number of sources registered so far.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Forgets every source from `keep` on, with the plans recorded for them, so a dataset
    /// uploaded for one call (an evaluation, a previous `fit`) frees its device memory.
    pub fn truncate_sources(&mut self, keep: usize) {
        self.sources.truncate(keep);
        self.plans.retain(|p| p.source.is_none_or(|s| s.0 < keep));
    }

    /// Number of rows a source visits per pass.
    pub fn source_len(&self, id: SourceId) -> usize {
        self.sources[id.0].indices.len
    }

    /// Replaces a source's visiting order (a new epoch's shuffle).
    pub fn set_order(&self, id: SourceId, order: &[u32]) -> Result<()> {
        let s = &self.sources[id.0];
        if let Some(bad) = order.iter().find(|&&i| i as usize >= s.data.len) {
            return Err(Error::Data(format!("index {bad} is past the dataset's {} images", s.data.len)));
        }
        s.indices.rewrite(&self.gpu, order)
    }

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
    ) -> Result<Option<wgpu::Texture>> {
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
    fn record_update(&self) -> Result<Dispatch> {
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

    /// Writes the optimizer scalars for steps `first_step + 1 ..= first_step + count`.
    fn write_schedule(&mut self, first_step: u64, count: usize) -> Result<()> {
        if count > self.schedule_len {
            self.optim_schedule = floats(&self.gpu, "optimizer schedule", count * 8)?;
            self.schedule_len = count;
        }
        let sched: Vec<StepUniform> = (0..count as u64)
            .map(|s| StepUniform::from(self.optimizer.step_scalars(first_step + s + 1)))
            .collect();
        self.gpu.write(&self.optim_schedule, 0, bytemuck::cast_slice(&sched));
        Ok(())
    }

    /// Submits one epoch of training over `source` (in its current order) in batches of
    /// `batch` rows, the last batch partial. `first_step` is the number of optimizer steps
    /// taken before. Returns the steps taken. No wait: call [`Replica::read_metrics`].
    pub fn submit_epoch(
        &mut self,
        source: SourceId,
        batch: usize,
        first_step: u64,
        hook: ChunkHook<'_>,
    ) -> Result<usize> {
        let n = self.source_len(source);
        if batch == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        let full = n / batch;
        let tail = n % batch;
        let steps = full + usize::from(tail > 0);
        self.write_schedule(first_step, steps)?;
        let mut launches: Vec<(usize, usize)> = Vec::with_capacity(steps);
        if full > 0 {
            let starts: Vec<u32> = (0..full).map(|s| (s * batch) as u32).collect();
            let p = self.plan(source, batch, PassKind::Train, batch, &starts)?;
            launches.extend((0..full).map(|s| (p, s)));
        }
        if tail > 0 {
            let p = self.plan(source, tail, PassKind::Train, tail, &[(full * batch) as u32])?;
            launches.push((p, 0));
        }
        self.encode_launches(&launches, true, hook)?;
        Ok(steps)
    }

    /// Submits a forward pass over all of `source` in chunks of `chunk` rows, accumulating
    /// its loss sum and correct count in the evaluation slots. No wait.
    pub fn submit_eval(&mut self, source: SourceId, chunk: usize) -> Result<()> {
        let n = self.source_len(source);
        let chunk = chunk.min(self.work.rows).max(1);
        let full = n / chunk;
        let tail = n % chunk;
        let mut launches = Vec::new();
        if full > 0 {
            let starts: Vec<u32> = (0..full).map(|s| (s * chunk) as u32).collect();
            let p = self.plan(source, chunk, PassKind::Eval, chunk, &starts)?;
            launches.extend((0..full).map(|s| (p, s)));
        }
        if tail > 0 {
            let p = self.plan(source, tail, PassKind::Eval, tail, &[(full * chunk) as u32])?;
            launches.push((p, 0));
        }
        self.encode_launches(&launches, false, &mut |_| Ok(()))
    }

    /// Encodes launches `(plan, index into its starts)`, [`STEPS_PER_SUBMIT`] per submission,
    /// at most [`MAX_IN_FLIGHT`] submissions ahead of the device.
    fn encode_launches(&self, launches: &[(usize, usize)], train: bool, hook: ChunkHook<'_>) -> Result<()> {
        let mut in_flight = std::collections::VecDeque::new();
        let mut done = 0;
        for (chunk_no, chunk) in launches.chunks(STEPS_PER_SUBMIT).enumerate() {
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            for (i, &(p, s)) in chunk.iter().enumerate() {
                let plan = &self.plans[p];
                enc.copy_buffer_to_buffer(&plan.starts, (s * 16) as u64, &self.gather_step, 0, 16);
                if train {
                    let step = chunk_no * STEPS_PER_SUBMIT + i;
                    enc.copy_buffer_to_buffer(
                        &self.optim_schedule,
                        (step * 32) as u64,
                        &self.optim_step,
                        0,
                        32,
                    );
                }
                let mut pass = enc.begin_compute_pass(&Default::default());
                for d in &plan.dispatches {
                    d.encode(&mut pass);
                }
            }
            in_flight.push_back((self.gpu.queue.submit([enc.finish()]), chunk.len()));
            if in_flight.len() > MAX_IN_FLIGHT {
                if let Some((index, n)) = in_flight.pop_front() {
                    self.gpu.wait_for(index)?;
                    done += n;
                }
            }
            // Cheap: reads flags set by wgpu's callbacks, never waits.
            self.gpu.check()?;
            hook(done)?;
        }
        Ok(())
    }

    /// Data parallel, first half of a step: launch `s` of gradient plan `plan`, then a copy
    /// of the gradients into `staging` (MAP_READ). Submitted, not waited for.
    pub(crate) fn submit_grads(
        &self,
        plan: usize,
        s: usize,
        staging: &wgpu::Buffer,
    ) -> wgpu::SubmissionIndex {
        let p = &self.plans[plan];
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&p.starts, (s * 16) as u64, &self.gather_step, 0, 16);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in &p.dispatches {
                d.encode(&mut pass);
            }
        }
        enc.copy_buffer_to_buffer(&self.grads, 0, staging, 0, (self.layout.len * 4) as u64);
        self.gpu.queue.submit([enc.finish()])
    }

    /// Data parallel, second half of a step: the reduced gradients replace this replica's,
    /// and the optimizer applies update `t` (1-based). Submitted, not waited for.
    pub(crate) fn submit_update(&self, reduced: &[f32], t: u64) -> Result<()> {
        if reduced.len() != self.layout.len {
            return Err(Error::Shape(format!(
                "{} reduced gradients for {} parameters",
                reduced.len(),
                self.layout.len
            )));
        }
        let update = self.update.as_ref().ok_or_else(|| Error::Config("optimizer not recorded".into()))?;
        self.gpu.write(&self.grads, 0, bytemuck::cast_slice(reduced));
        let scalars = StepUniform::from(self.optimizer.step_scalars(t));
        self.gpu.write(&self.optim_step, 0, bytemuck::bytes_of(&scalars));
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            update.encode(&mut pass);
        }
        self.gpu.queue.submit([enc.finish()]);
        Ok(())
    }

    /// One training step on a batch the host provides: `x: [rows, inputs]` f32 and labels.
    /// `t` is the 1-based optimizer step. Waits, and returns `(loss sum, correct)`.
    pub fn train_step_direct(&mut self, x: &[f32], labels: &[u8], t: u64) -> Result<(f32, u32)> {
        let rows = labels.len();
        if rows == 0 || x.len() != rows * self.spec.inputs() {
            return Err(Error::Shape(format!(
                "train_step needs x: [rows, {}] and rows labels, got {} values and {rows} labels",
                self.spec.inputs(),
                x.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= self.spec.outputs()) {
            return Err(Error::Data(format!(
                "label {bad} is not below the model's {} classes",
                self.spec.outputs()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("input value {i} is not finite")));
        }
        let p = self.plan(None, rows, PassKind::Train, rows, &[0])?;
        let y: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        self.gpu.write(&self.work.x, 0, bytemuck::cast_slice(x));
        self.gpu.write(&self.work.y, 0, bytemuck::cast_slice(&y));
        let scalars = StepUniform::from(self.optimizer.step_scalars(t));
        self.gpu.write(&self.optim_step, 0, bytemuck::bytes_of(&scalars));
        self.clear_metrics();
        let all: Vec<&Dispatch> = self.plans[p].dispatches.iter().collect();
        crate::kernels::submit(&self.gpu, &all);
        let m = self.read_metrics()?;
        Ok((m[0], m[1] as u32))
    }

    /// Reads the best-weights snapshot back (waits).
    pub fn read_best(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.best, 0, self.layout.len)
    }

    /// Replaces the best-weights snapshot (resume).
    pub fn write_best(&self, best: &[f32]) -> Result<()> {
        if best.len() != self.layout.len {
            return Err(Error::Shape(format!(
                "best weights: {} floats, the model has {}",
                best.len(),
                self.layout.len
            )));
        }
        self.gpu.write(&self.best, 0, bytemuck::cast_slice(best));
        Ok(())
    }

    /// Floats in the flat parameter layout.
    pub fn parameter_len(&self) -> usize {
        self.layout.len
    }

    /// Zeroes the metrics accumulators.
    pub fn clear_metrics(&self) {
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.metrics, 0, None);
        self.gpu.queue.submit([enc.finish()]);
    }

    /// Waits for submitted work and reads `[train loss sum, train correct, eval loss sum,
    /// eval correct]`: the one readback per epoch.
    pub fn read_metrics(&self) -> Result<[f32; 4]> {
        let v: Vec<f32> = self.gpu.read(&self.metrics, 0, 4)?;
        Ok([v[0], v[1], v[2], v[3]])
    }

    /// Copies the current parameters to the best-weights buffer, on the device.
    pub fn snapshot_best(&self) {
        self.copy(&self.params, &self.best);
    }

    /// Copies the best-weights buffer back into the parameters, on the device.
    pub fn restore_best(&self) {
        self.copy(&self.best, &self.params);
    }

    fn copy(&self, from: &wgpu::Buffer, to: &wgpu::Buffer) {
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(from, 0, to, 0, (self.layout.len * 4) as u64);
        self.gpu.queue.submit([enc.finish()]);
    }

    /// Reads the flat parameters back (waits).
    pub fn read_params(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.params, 0, self.layout.len)
    }

    /// Reads the flat gradients of the last step back (waits).
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        self.gpu.read(&self.grads, 0, self.layout.len)
    }

    /// Reads `(m, v)` back (waits).
    pub fn read_moments(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.gpu.read(&self.m, 0, self.layout.len)?, self.gpu.read(&self.v, 0, self.layout.len)?))
    }

    /// Overwrites parameters and optimizer moments (resume, or weights from elsewhere).
    pub fn write_state(&self, params: &[f32], m: Option<&[f32]>, v: Option<&[f32]>) -> Result<()> {
        for (name, data, buf) in
            [("params", Some(params), &self.params), ("m", m, &self.m), ("v", v, &self.v)]
        {
            if let Some(data) = data {
                if data.len() != self.layout.len {
                    return Err(Error::Shape(format!(
                        "{name}: {} floats, the model has {}",
                        data.len(),
                        self.layout.len
                    )));
                }
                self.gpu.write(buf, 0, bytemuck::cast_slice(data));
            }
        }
        Ok(())
    }
}
