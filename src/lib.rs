//! # wgtrain
//!
//! Train small neural networks on any GPU through [wgpu]: WGSL compute shaders do the math,
//! the host only schedules. A CPU reference backend implements the same operations and is the
//! oracle of the tests.

mod error;
mod model;
mod ops;
mod optim;
mod predict;

pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod train;

pub use error::{Error, Result};
pub use model::{Activation, Init, LayerSlots, MlpSpec, ParamLayout, TENSOR_ALIGN};
pub use ops::MatmulForm;
pub use optim::{Optimizer, StepScalars};
pub use train::early_stopping::{Decision, EarlyStopping, EpochMetrics, Mode, Monitor, StopReason};
pub use train::history::{EpochRecord, History};

pub mod device;
pub mod kernels;
pub mod parallel;
pub use device::{AdapterReport, AdapterSelection, Gpu};
pub use train::{Backend, CancelToken, Evaluation, FitReport, TrainEvent, Trainer, TrainerOptions};
pub use checkpoint::TrainingState;
pub use predict::{Model, Prediction};
