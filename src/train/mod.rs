//! The trainer: the epoch loop on top of an executor, its options and the events it reports.

pub mod background;
mod events;
mod options;
mod trainer;

pub use events::{CancelToken, Evaluation, FitReport, TrainEvent};
pub use options::{Backend, BackendChoice, TrainerOptions};
pub use trainer::Trainer;
