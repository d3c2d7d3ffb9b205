//! Epochs and evaluations sent to the queue: launches of recorded plans, a few steps per
//! command buffer, a bounded number of submissions in flight, no wait per batch.

use super::SourceId;
use super::{floats, PassKind, Replica};
use crate::error::{Error, Result};
use crate::gpu::kernels::{Dispatch, GatherStep, StepUniform};

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

/// The submissions of one pass still in flight, the launches known complete, and the last
/// submission: kept across the chunks of a streamed pass so that its bound holds over them.
#[derive(Default)]
pub(super) struct InFlight {
    queue: std::collections::VecDeque<(wgpu::SubmissionIndex, usize)>,
    done: usize,
    pub(super) last: Option<wgpu::SubmissionIndex>,
}

impl Replica {
    /// Writes the optimizer scalars for steps `first_step + 1 ..= first_step + count`.
    pub(super) fn write_schedule(&mut self, first_step: u64, count: usize) -> Result<()> {
        if count > self.schedule_len {
            self.optim_schedule = floats(&self.gpu, "optimizer schedule", count * 8)?;
            self.schedule_len = count;
        }
        let sched: Vec<StepUniform> = (0..count as u64)
            .map(|s| StepUniform::from(self.lr_schedule.step_scalars(&self.optimizer, first_step + s + 1)))
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
        // Step s of the epoch is optimizer step first_step + s + 1: its dropout masks'.
        let t = |s: usize| first_step + s as u64 + 1;
        if full > 0 {
            let starts: Vec<GatherStep> = (0..full).map(|s| GatherStep::new(s * batch, t(s), 0)).collect();
            let p = self.plan(source, batch, PassKind::Train, batch, &starts)?;
            launches.extend((0..full).map(|s| (p, s)));
        }
        if tail > 0 {
            let p =
                self.plan(source, tail, PassKind::Train, tail, &[GatherStep::new(full * batch, t(full), 0)])?;
            launches.push((p, 0));
        }
        self.encode_launches(&launches, Some(0), &mut InFlight::default(), hook)?;
        Ok(steps)
    }

    /// Submits `count` training steps over the first `batch` rows of `source`, the same rows
    /// each time (for measurements), as steps `first_step + 1 ..`. No wait.
    pub(crate) fn submit_steps(
        &mut self,
        source: SourceId,
        batch: usize,
        count: usize,
        first_step: u64,
    ) -> Result<()> {
        if batch == 0 || batch > self.source_len(source) {
            return Err(Error::Config(format!(
                "a batch of {batch} rows from a source of {}",
                self.source_len(source)
            )));
        }
        self.write_schedule(first_step, count)?;
        let starts: Vec<GatherStep> =
            (0..count).map(|s| GatherStep::new(0, first_step + s as u64 + 1, 0)).collect();
        let p = self.plan(source, batch, PassKind::Train, batch, &starts)?;
        let launches: Vec<(usize, usize)> = (0..count).map(|s| (p, s)).collect();
        self.encode_launches(&launches, Some(0), &mut InFlight::default(), &mut |_| Ok(()))
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
            let starts: Vec<GatherStep> = (0..full).map(|s| GatherStep::new(s * chunk, 0, 0)).collect();
            let p = self.plan(source, chunk, PassKind::Eval, chunk, &starts)?;
            launches.extend((0..full).map(|s| (p, s)));
        }
        if tail > 0 {
            let p = self.plan(source, tail, PassKind::Eval, tail, &[GatherStep::new(full * chunk, 0, 0)])?;
            launches.push((p, 0));
        }
        self.encode_launches(&launches, None, &mut InFlight::default(), &mut |_| Ok(()))
    }

    /// Encodes launches `(plan, index into its starts)`, [`STEPS_PER_SUBMIT`] per submission,
    /// at most [`MAX_IN_FLIGHT`] submissions ahead of the device (counted in `flight`, which a
    /// streamed pass keeps across its chunks). `schedule`: the optimizer-schedule index of the
    /// first launch, for training; `None` for evaluation.
    pub(super) fn encode_launches(
        &self,
        launches: &[(usize, usize)],
        schedule: Option<usize>,
        flight: &mut InFlight,
        hook: ChunkHook<'_>,
    ) -> Result<()> {
        for (chunk_no, chunk) in launches.chunks(STEPS_PER_SUBMIT).enumerate() {
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            for (i, &(p, s)) in chunk.iter().enumerate() {
                let plan = &self.plans[p];
                enc.copy_buffer_to_buffer(&plan.starts, (s * 16) as u64, &self.gather_step, 0, 16);
                if let Some(first) = schedule {
                    let step = first + chunk_no * STEPS_PER_SUBMIT + i;
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
            let index = self.gpu.queue.submit([enc.finish()]);
            flight.last = Some(index.clone());
            flight.queue.push_back((index, chunk.len()));
            if flight.queue.len() > MAX_IN_FLIGHT {
                if let Some((index, n)) = flight.queue.pop_front() {
                    self.gpu.wait_for(index)?;
                    flight.done += n;
                }
            }
            // Cheap: reads flags set by wgpu's callbacks, never waits.
            self.gpu.check()?;
            hook(flight.done)?;
        }
        Ok(())
    }

    /// One training step on a batch the host provides: `x: [rows, inputs]` f32 and labels.
    /// `t` is the 1-based optimizer step. Waits, and returns `(loss sum, correct)`.
    pub fn train_step_direct(&mut self, x: &[f32], labels: &[u32], t: u64) -> Result<(f32, u32)> {
        if self.loss != crate::spec::Loss::SoftmaxCrossEntropy {
            return Err(Error::Config("a step on host labels trains the softmax cross-entropy only".into()));
        }
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
        let launch = GatherStep::new(0, t, 0);
        let p = self.plan(None, rows, PassKind::Train, rows, &[launch])?;
        // No gather runs, so nothing copies the launch's values: dropout reads them here.
        self.gpu.write(&self.gather_step, 0, bytemuck::bytes_of(&launch));
        self.gpu.write(&self.work.x, 0, bytemuck::cast_slice(x));
        self.gpu.write(&self.work.y, 0, bytemuck::cast_slice(labels));
        let scalars = StepUniform::from(self.lr_schedule.step_scalars(&self.optimizer, t));
        self.gpu.write(&self.optim_step, 0, bytemuck::bytes_of(&scalars));
        self.clear_metrics();
        let all: Vec<&Dispatch> = self.plans[p].dispatches.iter().collect();
        crate::gpu::kernels::submit(&self.gpu, &all);
        let m = self.read_metrics()?;
        Ok((m.train.loss as f32, m.train.correct as u32))
    }
}
