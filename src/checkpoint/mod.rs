//! Saved models and resumable training state, both as safetensors files.
//!
//! A model file holds `layers.{l}.weight: F32 [inputs, outputs]` and `layers.{l}.bias: F32
//! [outputs]` with `__metadata__ = {"format": "wgtrain-mlp", "version": "1", "spec": <Network
//! JSON>}` (and, for a model of a table, `"loss"` and `"preprocessing"`: [`Preprocessing`]),
//! so other tools (PyTorch, numpy) read it as plain tensors. A checkpoint,
//! `checkpoint.safetensors` in a folder, holds the flat buffers `params`, `m`, `v`, `best_params`
//! (F32, 1-D, laid out as `spec.layout()`; `best_params` has length 0 when there is no snapshot)
//! and the rest of [`TrainingState`] as JSON strings in the metadata (the learning-rate control
//! under one key, `lr_control`, which older checkpoints lack: they read as the optimizer's rate,
//! no schedule and no ReduceLROnPlateau, which is what they trained with).
//!
//! Both loaders treat the file as untrusted: the file size is bounded before it is read, the
//! spec's parameter count is bounded with checked arithmetic before anything is sized from it,
//! every tensor must be present with the exact name, dtype, shape and byte length expected (no
//! extra ones), and every value must be finite. Nothing is allocated from a size the file declares
//! until the bytes backing it have been seen. Every error names the file.
//!
//! Files are written atomically (`write_atomic`): a crash leaves the old file or the new one.
//! The same contents always give the same bytes: `bytes` writes the header itself, metadata
//! keys sorted.
//!
//! The code is split by concern: `model` (saved models), `preprocess` (a table model's
//! encoding), `rows` (predicting on a table), `predict` ([`Model`]), `state` (training checkpoints),
//! `validate` (the untrusted-input checks both loaders share), `bytes` (encoding and bounded
//! reading); files are written by `crate::atomic_file::write_atomic`.

use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::callbacks::early_stopping::EarlyStopping;
use crate::callbacks::history::History;
use crate::callbacks::reduce_lr::ReduceLrOnPlateau;
use crate::spec::Network;
use crate::spec::{LrSchedule, Optimizer};

mod bytes;
mod model;
mod predict;
mod preprocess;
mod rows;
mod state;
mod validate;

pub use model::{load_model, load_model_bytes, save_model, save_model_with};
pub use predict::{Model, Prediction};
pub use preprocess::Preprocessing;
pub use rows::TablePrediction;
pub use state::{load_checkpoint, load_checkpoint_bytes, save_checkpoint};

/// Everything needed to continue training exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// The model's shape.
    pub spec: Network,
    /// The update rule and its hyper-parameters.
    pub optimizer: Optimizer,
    /// Flat parameters and optimizer moments, laid out as `spec.layout()`.
    pub params: Vec<f32>,
    /// Adam's first moment (SGD's momentum buffer), laid out as `params`.
    pub m: Vec<f32>,
    /// Adam's second moment, laid out as `params` (zeros for SGD).
    pub v: Vec<f32>,
    /// Optimizer steps taken (Adam's t).
    pub step: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// The shuffle generator, as it stands after `epoch` epochs.
    pub rng: Pcg64Mcg,
    /// The early-stopping rule with its progress, if the run uses one.
    pub early_stopping: Option<EarlyStopping>,
    /// Weights snapshotted by restore_best_weights (empty if none).
    pub best_params: Vec<f32>,
    /// The epochs completed so far.
    pub history: History,
    /// The base learning rate now: the optimizer's, or what ReduceLROnPlateau reduced it to.
    pub learning_rate: f32,
    /// The schedule the run trains with.
    pub lr_schedule: LrSchedule,
    /// ReduceLROnPlateau with its progress, if the run uses one.
    pub reduce_lr_on_plateau: Option<ReduceLrOnPlateau>,
}

/// The file [`save_checkpoint`] writes in its folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// The most floats a flat buffer read from a file may hold (padding included): 2^26, 256 MiB.
/// Far above any MLP this crate trains, far below what would hurt to allocate.
pub const MAX_PARAM_FLOATS: usize = 1 << 26;

/// The most layers a spec read from a file may have.
pub const MAX_LAYERS: usize = 1024;

/// The largest file either loader reads: four buffers of [`MAX_PARAM_FLOATS`] (1 GiB) plus
/// 256 MiB for the header (a long history).
pub const MAX_FILE_BYTES: u64 = 4 * 4 * MAX_PARAM_FLOATS as u64 + (1 << 28);

const MODEL_FORMAT: &str = "wgtrain-mlp";
const CHECKPOINT_FORMAT: &str = "wgtrain-checkpoint";
const VERSION: &str = "1";
/// The name [`load_model_bytes`] and [`load_checkpoint_bytes`] give their input in errors.
const BYTES_NAME: &str = "<in-memory safetensors>";
