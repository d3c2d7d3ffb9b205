//! How training reports to the application (events through a callback, never printing) and
//! how the application stops it (a cancellation token).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::train::early_stopping::{Decision, StopReason};
use crate::train::history::{EpochRecord, History};

/// Something that happened during `fit`.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// Training steps of the current epoch completed on the device so far (reported while
    /// the device works; the epoch's loss is only known at its end).
    Progress { epoch: usize, steps_done: usize, steps: usize, samples_per_second: f64 },
    /// An epoch ended: its metrics and what early stopping decided.
    EpochEnd { record: EpochRecord, decision: Decision },
}

/// Stops training from another thread at the next step boundary (`fit` then returns
/// [`crate::Error::Cancelled`]; the weights of the last completed step stay readable).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks training to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

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
    pub history: History,
    pub epochs_run: usize,
    /// The epoch early stopping stopped at, if it did.
    pub stopped_epoch: Option<usize>,
    pub stop_reason: Option<StopReason>,
    /// A sentence on why training ended, for logs.
    pub stop_message: Option<String>,
    pub best_epoch: Option<usize>,
    /// The epoch whose weights were restored at the end (restore_best_weights).
    pub restored_epoch: Option<usize>,
}

/// Loss and accuracy over a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f32,
    pub accuracy: f32,
    pub samples: usize,
}
