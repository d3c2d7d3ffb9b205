//! The seam between the training loop and whatever runs the math.
//!
//! [`Executor`] is the one interface the trainer talks to: the CPU executor, the model on one
//! wgpu device and the model mirrored over several devices all implement it, and the trainer
//! never asks which one it holds. A new way to run (another process, another machine) is one
//! more implementation, not an arm in every method of the trainer.
//!
//! [`GradientReducer`] is the smaller seam inside data parallel: how the gradients of the
//! replicas become one. In one process the host sums staging buffers; across processes
//! (feature `mpi`) the same call sums this process's replicas and then exchanges the sums
//! with the other processes, without touching the step.

use crate::data::Dataset;
use crate::error::Result;
use crate::spec::LrSchedule;

/// Sums over one pass (an epoch's training steps, or an evaluation): what the metrics are
/// computed from once the pass is over.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PassSums {
    /// Sum over rows of the per-row loss.
    pub loss: f64,
    /// Rows whose prediction was right (classification).
    pub correct: f64,
    /// Rows visited.
    pub rows: usize,
    /// Sums the task's other metrics are computed from, in the task's layout: empty for
    /// classification (no allocation); for the regression losses, `MSE_SUMS * outputs` sums
    /// as `crate::cpu::regression_into` lays them out.
    pub task: Vec<f64>,
}

impl PassSums {
    /// `(mean loss, accuracy)`; an empty pass gives zeros rather than NaN.
    pub fn means(&self) -> (f32, f32) {
        let n = self.rows.max(1) as f64;
        ((self.loss / n) as f32, (self.correct / n) as f32)
    }

    /// Adds `other`'s sums (loss, correct, rows and task) to these.
    pub fn add(&mut self, other: &PassSums) {
        self.loss += other.loss;
        self.correct += other.correct;
        self.rows += other.rows;
        self.add_task_f64(&other.task);
    }

    /// Adds task sums already in f64 (a replica's or a peer's pass).
    pub fn add_task_f64(&mut self, task: &[f64]) {
        if self.task.len() < task.len() {
            self.task.resize(task.len(), 0.0);
        }
        self.task.iter_mut().zip(task).for_each(|(s, t)| *s += t);
    }

    /// Adds one batch's task sums (f32, as the loss computes them) to the pass's f64 ones.
    pub fn add_task(&mut self, batch: &[f32]) {
        if self.task.len() < batch.len() {
            self.task.resize(batch.len(), 0.0);
        }
        for (s, &b) in self.task.iter_mut().zip(batch) {
            *s += b as f64;
        }
    }
}

/// What one epoch left behind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EpochSums {
    /// Over the training steps, each batch measured before its update.
    pub train: PassSums,
    /// Over the validation rows with the weights at the end of the epoch.
    pub val: Option<PassSums>,
    /// Optimizer steps taken.
    pub steps: usize,
}

/// Where validation rows come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValSource<'a> {
    /// No validation.
    None,
    /// These indices of the training set.
    Split(&'a [u32]),
    /// A whole data set of its own.
    Data(&'a Dataset),
}

impl<'a> ValSource<'a> {
    /// The validation rows as (dataset, indices); `all` receives the indices of a whole
    /// explicit validation set.
    pub fn rows<'b>(&'b self, train: &'b Dataset, all: &'b mut Vec<u32>) -> Option<(&'b Dataset, &'b [u32])> {
        match self {
            ValSource::None => None,
            ValSource::Split(idx) => Some((train, idx)),
            ValSource::Data(v) => {
                *all = (0..v.len() as u32).collect();
                Some((v, all.as_slice()))
            }
        }
    }

    /// Number of validation rows.
    pub fn len(&self) -> usize {
        match self {
            ValSource::None => 0,
            ValSource::Split(idx) => idx.len(),
            ValSource::Data(v) => v.len(),
        }
    }
}

/// One epoch's instructions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EpochPlan<'a> {
    /// The training rows in this epoch's order.
    pub order: &'a [u32],
    /// Rows per optimizer step (the last step takes the rest).
    pub batch: usize,
    /// Optimizer steps taken before this epoch (Adam's bias correction continues from it).
    pub first_step: u64,
    /// Rows per evaluation launch.
    pub eval_batch: usize,
}

/// Called every few steps with the number of steps known to be complete; an error (a
/// cancellation) ends the epoch.
pub(crate) type StepHook<'a> = &'a mut dyn FnMut(usize) -> Result<()>;

/// Everything an executor holds that a checkpoint must keep, in the flat parameter layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExecutorState {
    /// The parameters.
    pub params: Vec<f32>,
    /// Adam's first moment (SGD's momentum).
    pub m: Vec<f32>,
    /// Adam's second moment (zeros for SGD).
    pub v: Vec<f32>,
    /// The best-weights snapshot; empty when none was taken.
    pub best: Vec<f32>,
}

/// Where the time of data-parallel steps went (host wall clock, summed over steps).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParallelStats {
    /// Data-parallel optimizer steps taken, over every epoch so far.
    pub steps: usize,
    /// From submitting the replicas' gradient passes until every staging buffer is mapped:
    /// their compute plus the device-to-host copy.
    pub compute_and_download_secs: f64,
    /// The sum of this process's replicas' gradients on the host.
    pub reduce_secs: f64,
    /// Exchanging gradient sums with the other processes of a group (feature `mpi`),
    /// waiting on the slowest included; 0 in one process.
    pub exchange_secs: f64,
    /// Writing the reduced gradients back and submitting the updates.
    pub upload_secs: f64,
    /// Training rows each replica processed.
    pub rows_per_replica: Vec<usize>,
}

/// Runs the math of training for the [`crate::Trainer`]: holds the parameters and optimizer
/// state wherever they live, and runs epochs, evaluations and single steps on them.
pub(crate) trait Executor: Send {
    /// Names of the devices it runs on (`cpu` for the CPU executor).
    fn devices(&self) -> Vec<String>;

    /// Kernel launches per training step (0 where there are none).
    fn dispatches_per_step(&self) -> usize {
        0
    }

    /// Data-parallel timing; `None` for a single device.
    fn parallel_stats(&self) -> Option<ParallelStats> {
        None
    }

    /// Whether this process writes what a run leaves behind (checkpoints): true except on
    /// the ranks other than 0 of a process group, which hold the same state.
    fn is_primary(&self) -> bool {
        true
    }

    /// Makes the training rows `train_idx` of `data` and the validation rows ready for
    /// [`Executor::run_epoch`] (uploads them where the executor has a device).
    fn prepare(&mut self, data: &Dataset, train_idx: &[u32], val: &ValSource<'_>) -> Result<()>;

    /// One epoch of training over `plan.order` (rows of `data`, prepared before), then a
    /// validation pass over `val`.
    fn run_epoch(
        &mut self,
        data: &Dataset,
        val: &ValSource<'_>,
        plan: &EpochPlan<'_>,
        hook: StepHook<'_>,
    ) -> Result<EpochSums>;

    /// Loss and correct sums of the current weights over all of `data`.
    fn evaluate(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums>;

    /// One optimizer step (the `t`-th, 1-based) on a batch the caller provides:
    /// `x: [rows, inputs]`, one label per row. Waits for the result.
    fn train_step(&mut self, x: &[f32], labels: &[u32], t: u64) -> Result<PassSums>;

    /// The current parameters.
    fn parameters(&self) -> Result<Vec<f32>>;

    /// The parameters of every replica (one entry for a single device; tests check that
    /// mirrored replicas agree).
    fn replica_parameters(&self) -> Result<Vec<Vec<f32>>> {
        Ok(vec![self.parameters()?])
    }

    /// Parameters, optimizer moments and the best-weights snapshot.
    fn read_state(&self) -> Result<ExecutorState>;

    /// Replaces what [`Executor::read_state`] returns; `step` optimizer steps were taken.
    /// An empty `best` leaves the snapshot as it is.
    fn write_state(&mut self, state: &ExecutorState, step: u64) -> Result<()>;

    /// From the next step on, train with the base learning rate `lr` shaped by `schedule`
    /// (every replica or process of the executor together). The rate is a per-step scalar:
    /// nothing is rebuilt or recompiled. An invalid rate or schedule is [`crate::Error::Config`].
    fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()>;

    /// Copies the current parameters to the best-weights snapshot.
    fn snapshot_best(&mut self) -> Result<()>;

    /// Copies the best-weights snapshot back into the parameters.
    fn restore_best(&mut self) -> Result<()>;
}

/// Makes one gradient out of the gradients of several replicas.
///
/// Each replica's gradient is already scaled by `1 / global batch`, so the plain sum is the
/// gradient of the global mean loss. An implementation must give the same bits for the same
/// inputs on every call and every machine: replicas apply the result independently and must
/// never drift.
pub(crate) trait GradientReducer: Send {
    /// Sums `parts` (one per replica, in replica order) element-wise into `out`.
    fn reduce(&mut self, parts: &[&[f32]], out: &mut [f32]) -> Result<()>;
}
