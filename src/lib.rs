//! # wgtrain
//!
//! Train small neural networks on any GPU through [wgpu]: WGSL compute shaders do the math,
//! the host only schedules. A CPU reference backend implements the same operations; it is the
//! oracle of the tests and the executor where no adapter exists.
//!
//! The pieces an application uses:
//! - [`Trainer`] built from [`TrainerOptions`] (model [`Network`], [`Optimizer`], batch size,
//!   epochs, seed, [`EarlyStopping`], [`Backend`]): `fit`, `evaluate`, `predict`,
//!   `train_step`, `parameters`, checkpoints with `state` / `resume`.
//! - [`Model`]: trained weights for inference, saved and loaded as safetensors.
//! - [`data`]: MNIST-style IDX loading with errors instead of panics, validation splits.
//! - [`TrainEvent`]s reach the application through a callback; a [`CancelToken`] stops
//!   training from another thread. Nothing is printed by the library.
//!
//! Every fallible call returns [`Result`]; [`Error`]'s variants say what went wrong and what
//! to do. Calls block (with `pollster` where wgpu is asynchronous); an async application
//! awaits [`Trainer::fit_async`] / [`Trainer::evaluate_async`], which run on their own thread.
//!
//! ```
//! use wgtrain::data::Dataset;
//! use wgtrain::{Backend, EarlyStopping, Network, Monitor, TrainEvent, Trainer, TrainerOptions};
//!
//! // A toy problem: 4-pixel images, the class is whether the first pixel is bright.
//! let pixels: Vec<u8> = (0..400u32).map(|i| (i * 97 % 256) as u8).collect();
//! let labels: Vec<u8> = pixels.chunks(4).map(|p| u8::from(p[0] > 127)).collect();
//! let data = Dataset::new(pixels, labels, 4, 2)?;
//!
//! let options = TrainerOptions {
//!     spec: Network::classifier(&[4, 16, 2], wgtrain::Activation::Relu),
//!     batch_size: 10,
//!     epochs: 30,
//!     validation_split: 0.2,
//!     early_stopping: Some(EarlyStopping::new(Monitor::val_loss()).patience(5).restore_best_weights(true)),
//!     // Backend::default() picks a hardware GPU if there is one, else the CPU backend.
//!     backend: Backend::Cpu,
//!     ..TrainerOptions::default()
//! };
//! let mut trainer = Trainer::new(options)?;
//! let report = trainer.fit(&data, None, |event| {
//!     if let TrainEvent::EpochEnd { record, .. } = event {
//!         assert!(record.get("loss").is_some_and(f32::is_finite));
//!     }
//! })?;
//! assert!(report.epochs_run >= 1);
//! let prediction = trainer.predict(&[1.0, 0.0, 0.0, 0.0])?;
//! assert_eq!(prediction.labels.len(), 1);
//! # Ok::<(), wgtrain::Error>(())
//! ```

#![warn(missing_docs)]

// Layers, lowest first; each module imports only those before it (`tests/layering.rs` reads
// the `crate::` paths of src/ and keeps it so):
//   error, ops -> atomic_file -> spec -> data -> exec -> cpu -> gpu -> parallel -> callbacks -> checkpoint
//   -> train
mod atomic_file;
pub mod callbacks;
pub mod checkpoint;
pub mod cpu;
pub mod data;
mod error;
mod exec;
pub mod gpu;
mod ops;
mod parallel;
pub mod spec;
pub mod train;

pub use callbacks::early_stopping::{Decision, EarlyStopping, Mode, Monitor, StopReason};
pub use callbacks::history::{EpochRecord, History};
pub use callbacks::metrics::EpochMetrics;
pub use callbacks::reduce_lr::ReduceLrOnPlateau;
pub use checkpoint::{Model, Prediction, Preprocessing, TablePrediction, TrainingState};
pub use error::{Error, Result};
pub use exec::ParallelStats;
pub use gpu::TuningCache;
pub use gpu::{AdapterReport, AdapterSelection, Gpu};
pub use ops::MatmulForm;
#[cfg(feature = "mpi")]
pub use parallel::{MpiGroup, DEFAULT_TIMEOUT as MPI_DEFAULT_TIMEOUT};
pub use spec::DropoutMask;
pub use spec::DEFAULT_HUBER_DELTA;
pub use spec::{
    Activation, Init, Layer, LayerSlots, Loss, LrSchedule, Network, Optimizer, ParamLayout, StepScalars,
    TENSOR_ALIGN,
};
pub use train::{
    Backend, BackendChoice, CancelToken, Evaluation, FitReport, TrainEvent, Trainer, TrainerOptions,
};

/// The README's Rust example, compiled as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
