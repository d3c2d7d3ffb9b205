//! Host-only logic that watches training from epoch to epoch: metrics by name, early
//! stopping, learning-rate reduction on a plateau, and the history of every epoch. No GPU
//! and no executor here.

pub mod early_stopping;
pub mod history;
pub mod metrics;
pub mod monitor;
pub mod reduce_lr;
