//! One model on one device: flat parameter, gradient and moment buffers, the activation
//! workspace, and recorded step plans that replay a whole training step (gather, the layers'
//! forward with dropout, the loss — softmax or sigmoid cross-entropy, MSE, MAE, Huber; a
//! narrow softmax head fused with the last layer — backward, optimizer) without the host.
//!
//! Per step the only host work is encoding two 16-32 byte buffer copies (which batch, which
//! bias correction) and the recorded dispatches; an epoch is submitted in chunks with no
//! wait, and its loss and accuracy accumulate on the device and are read back once.
//!
//! The concerns live in files of their own: `sources` (the rows a pass reads), `workspace`
//! (activation buffers), `record` (the graph recorded as dispatches), `operands` (which of
//! its operands live in textures, packed once for every product that reads them), `submit`
//! (epochs and evaluations sent to the queue), `stream` (data sets too large to be resident,
//! streamed through the device in chunks), `data_parallel` (the two halves of a mirrored
//! step) and `profile` (where a step's time goes). This file holds the buffers and their
//! state.

mod data_parallel;
mod head;
mod layers;
mod loss;
mod operands;
mod profile;
mod record;
mod sources;
mod stream;
mod submit;
mod workspace;

#[cfg(test)]
mod dropout_tests;
#[cfg(test)]
mod fusion_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

pub use profile::{KernelTimer, StepProfile};
pub(crate) use record::PassKind;
pub use sources::{Source, SourceId};
pub(crate) use stream::Rows;

use crate::error::{Error, Result};
use crate::exec::{ExecutorState, PassSums};
use crate::gpu::kernels::{pixel_lut_buffer, Dispatch, Kernels};
use crate::gpu::Gpu;
use crate::spec::{Loss, LrSchedule, Network, Optimizer, ParamLayout};

use record::Plan;
use workspace::Workspace;

use loss::{pass_sums, slot_len};

/// The sums a replica accumulates on its device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSums {
    /// Over training steps.
    pub(crate) train: PassSums,
    /// Over evaluation passes.
    pub(crate) eval: PassSums,
}

impl DeviceSums {
    /// Loss summed over the training rows.
    #[cfg(test)]
    pub fn train_loss_sum(&self) -> f64 {
        self.train.loss
    }

    /// Training rows predicted right.
    #[cfg(test)]
    pub fn train_correct(&self) -> f64 {
        self.train.correct
    }
}

/// The model mirrored on one device.
pub struct Replica {
    /// The device this replica lives on.
    pub gpu: Gpu,
    /// Its pipelines and matmul autotuner.
    pub kernels: Kernels,
    spec: Network,
    layout: ParamLayout,
    /// The update rule; its `lr` is the base rate `lr_schedule` shapes per step (both only
    /// feed the per-step uniforms, never a recorded plan).
    optimizer: Optimizer,
    lr_schedule: LrSchedule,
    /// The loss the plans record; [`Replica::set_loss`] changes it before any plan exists.
    loss: Loss,
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
    /// Tests: stream every data set in chunks of at most this many bytes per buffer, even
    /// one that fits the device (`stream.rs`).
    stream_chunk_bytes: Option<u64>,
    /// Whether plans record fused launches (`head.rs`, and the bias gradients and narrow
    /// layers' one-launch backward in `layers/dense.rs`); tests turn it off to compare.
    fuse: bool,
}

pub(super) fn uniform_buffer(gpu: &Gpu, label: &str, size: u64) -> Result<wgpu::Buffer> {
    gpu.scoped(&format!("creating `{label}`"), || {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })
}

pub(super) fn floats(gpu: &Gpu, label: &str, len: usize) -> Result<wgpu::Buffer> {
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    gpu.storage_buffer(label, (len.max(4) * 4) as u64, usage)
}

impl Replica {
    /// Uploads `params` (laid out as `spec.layout()`) and builds every pipeline on `gpu`.
    /// `max_rows` bounds the rows of any pass (batch size, evaluation chunk).
    pub fn new(
        gpu: Gpu,
        spec: &Network,
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
            metrics: floats(&gpu, "metrics", 2 * slot_len(Loss::SoftmaxCrossEntropy, spec.outputs()))?,
            lut: pixel_lut_buffer(&gpu)?,
            work: Workspace::new(&gpu, spec, max_rows)?,
            sources: Vec::new(),
            plans: Vec::new(),
            update: None,
            stream_chunk_bytes: None,
            fuse: true,
            spec: spec.clone(),
            layout,
            optimizer,
            lr_schedule: LrSchedule::Constant,
            loss: Loss::SoftmaxCrossEntropy,
            kernels,
            gpu,
        };
        let mut replica = replica;
        replica.update = Some(replica.record_update()?);
        Ok(replica)
    }

    /// Trains and evaluates with `loss` (the softmax cross-entropy until told): sizes the
    /// metrics buffer for it and drops the recorded plans, which recorded the old one.
    pub(crate) fn set_loss(&mut self, loss: Loss) -> Result<()> {
        self.metrics = floats(&self.gpu, "metrics", 2 * slot_len(loss, self.spec.outputs()))?;
        self.loss = loss;
        self.plans.clear();
        Ok(())
    }

    /// From the next step on, the base rate `lr` (finite, >= 0) shaped by `schedule`. The
    /// rate only feeds the per-step uniforms written before each submission, so no plan is
    /// recorded again: the optimizer's pipeline depends on the rule, not on its rate.
    pub(crate) fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()> {
        LrSchedule::check_rate(lr)?;
        schedule.validate()?;
        self.optimizer = self.optimizer.with_lr(lr);
        self.lr_schedule = schedule;
        Ok(())
    }

    /// Streams every data set loaded from now on in chunks of at most `bytes` per buffer, as
    /// a set too large for the device is (tests: streamed and resident runs compared).
    #[cfg(test)]
    pub(crate) fn force_streaming(&mut self, bytes: u64) {
        self.stream_chunk_bytes = Some(bytes);
    }

    /// The first float of the training (`train`) or evaluation metrics slot.
    pub(super) fn metrics_slot(&self, train: bool) -> usize {
        if train {
            0
        } else {
            slot_len(self.loss, self.spec.outputs())
        }
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

    /// Waits for submitted work and reads the training and evaluation sums accumulated
    /// since [`Replica::clear_metrics`]: the one readback per epoch. Rows are left at 0 for
    /// the caller, who knows how many each pass visited.
    pub fn read_metrics(&self) -> Result<DeviceSums> {
        let len = slot_len(self.loss, self.spec.outputs());
        let v: Vec<f32> = self.gpu.read(&self.metrics, 0, 2 * len)?;
        let sums = |slot: &[f32]| pass_sums(self.loss, self.spec.outputs(), slot);
        Ok(DeviceSums { train: sums(&v[..len]), eval: sums(&v[len..]) })
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
    #[cfg(test)]
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

    /// Parameters, moments and the best-weights snapshot, read back (waits).
    pub(crate) fn read_state(&self) -> Result<ExecutorState> {
        let (m, v) = self.read_moments()?;
        Ok(ExecutorState { params: self.read_params()?, m, v, best: self.read_best()? })
    }

    /// Writes what [`Replica::read_state`] returned; an empty `best` leaves the snapshot.
    pub(crate) fn write_full_state(&self, state: &ExecutorState) -> Result<()> {
        self.write_state(&state.params, Some(&state.m), Some(&state.v))?;
        if !state.best.is_empty() {
            self.write_best(&state.best)?;
        }
        Ok(())
    }
}
