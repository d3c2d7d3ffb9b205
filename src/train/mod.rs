//! Training: the model on each device, the epoch loop, early stopping and the history.

pub mod device_data;
pub mod early_stopping;
pub mod history;
pub mod replica;
mod engine;
mod events;
mod options;
mod trainer;

pub use events::{CancelToken, Evaluation, FitReport, TrainEvent};
pub use options::{Backend, TrainerOptions};
pub use trainer::Trainer;
