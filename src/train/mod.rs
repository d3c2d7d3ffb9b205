//! Training: the model on each device, the epoch loop, early stopping and the history.

pub mod background;
pub mod device_data;
pub mod early_stopping;
mod engine;
mod events;
pub mod history;
mod options;
pub mod replica;
mod trainer;

pub use events::{CancelToken, Evaluation, FitReport, TrainEvent};
pub use options::{Backend, TrainerOptions};
pub use trainer::Trainer;
