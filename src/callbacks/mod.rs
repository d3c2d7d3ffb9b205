//! Host-only logic that watches training from epoch to epoch: early stopping and the history
//! of every epoch's metrics. No GPU and no executor here.

pub mod early_stopping;
pub mod history;
