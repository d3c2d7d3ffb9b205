//! Saved models and resumable training state.

use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::model::MlpSpec;
use crate::optim::Optimizer;
use crate::train::early_stopping::EarlyStopping;
use crate::train::history::History;

/// Everything needed to continue training exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    pub spec: MlpSpec,
    pub optimizer: Optimizer,
    /// Flat parameters and optimizer moments, laid out as `spec.layout()`.
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Optimizer steps taken (Adam's t).
    pub step: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// The shuffle generator, as it stands after `epoch` epochs.
    pub rng: Pcg64Mcg,
    pub early_stopping: Option<EarlyStopping>,
    /// Weights snapshotted by restore_best_weights (empty if none).
    pub best_params: Vec<f32>,
    pub history: History,
}
