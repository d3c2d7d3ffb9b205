//! How training reports to the application (events through a callback, never printing) and
//! how the application stops it (a cancellation token).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::callbacks::early_stopping::{Decision, StopReason};
use crate::callbacks::history::{EpochRecord, History};
use crate::callbacks::metrics::EpochMetrics;

/// Something that happened during `fit`.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// Training steps of the current epoch completed on the device so far (reported while
    /// the device works; the epoch's loss is only known at its end). Sent every few steps
    /// (every 16 on the CPU and in data parallel, once per submission on one GPU), not after
    /// each one.
    Progress {
        /// The epoch under way, 0-based (as in [`EpochRecord::epoch`]).
        epoch: usize,
        /// Optimizer steps of this epoch the device has finished.
        steps_done: usize,
        /// Optimizer steps in this epoch: `ceil(training rows / batch size)`.
        steps: usize,
        /// Training rows finished since the epoch began, per second of wall-clock time.
        samples_per_second: f64,
    },
    /// ReduceLROnPlateau reduced the learning rate at the end of `epoch`; sent before that
    /// epoch's [`TrainEvent::EpochEnd`]. The new rate applies from the next step on.
    LearningRateReduced {
        /// The epoch whose metrics triggered it, 0-based.
        epoch: usize,
        /// The metric it watches, e.g. `val_loss`.
        monitor: String,
        /// That metric's value at this epoch.
        value: f32,
        /// The rate the epoch trained with.
        old_lr: f32,
        /// The rate from now on: `max(old_lr * factor, min_lr)`, in f32.
        new_lr: f32,
    },
    /// An epoch ended: its metrics and what early stopping decided.
    EpochEnd {
        /// The epoch's line of the history, as [`FitReport::history`] will hold it; with a
        /// schedule or ReduceLROnPlateau it holds `learning_rate` too.
        record: EpochRecord,
        /// [`Decision::Stop`] when early stopping ends training after this epoch;
        /// always [`Decision::Continue`] without early stopping.
        decision: Decision,
    },
}

/// Stops training from another thread at the next step boundary (`fit` then returns
/// [`crate::Error::Cancelled`]; the weights of the last completed step stay readable).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled. [`crate::Trainer::cancel_token`] hands out the one the
    /// trainer watches; a token made here stops nothing until it is that one's clone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks training to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`cancel`](Self::cancel) was called since the last [`reset`](Self::reset).
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears a past request, so the trainer can be used again.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What `fit` returns.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Every epoch the trainer has run, also those of earlier `fit` calls and before a resume.
    pub history: History,
    /// Epochs completed in all, counted like `history` (the trainer's
    /// [`epochs_completed`](crate::Trainer::epochs_completed)).
    pub epochs_run: usize,
    /// The epoch early stopping stopped at (0-based), if it did.
    pub stopped_epoch: Option<usize>,
    /// Which early-stopping rule stopped training; `None` when it ran all its epochs.
    pub stop_reason: Option<StopReason>,
    /// A sentence on why training ended, for logs.
    pub stop_message: Option<String>,
    /// The 0-based epoch with the best monitored value; `None` without early stopping or
    /// before the monitored value was first seen.
    pub best_epoch: Option<usize>,
    /// The epoch whose weights were restored at the end (restore_best_weights).
    pub restored_epoch: Option<usize>,
}

/// The task's metrics over a dataset: for classification `loss` (mean softmax cross-entropy
/// per sample, natural log) and `accuracy` (fraction of samples whose most probable class,
/// the first on ties, is the label).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The metrics by name.
    pub metrics: EpochMetrics,
    /// Rows evaluated: the whole dataset.
    pub samples: usize,
}

impl Evaluation {
    /// The metric `name`; `None` when this task does not report it.
    pub fn get(&self, name: &str) -> Option<f32> {
        self.metrics.get(name)
    }
}
