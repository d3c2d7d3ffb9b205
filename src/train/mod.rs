//! The trainer: the epoch loop on top of an executor, its options and the events it reports.

pub mod background;
#[cfg(feature = "mpi")]
mod distributed;
mod events;
mod lr_control;
mod options;
mod state;
mod trainer;

pub use events::{CancelToken, Evaluation, FitReport, TrainEvent};
pub use options::{Backend, BackendChoice, TrainerOptions};
pub use trainer::Trainer;
