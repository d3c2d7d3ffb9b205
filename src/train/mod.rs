//! Training: the epoch loop, early stopping and the history it records.

pub mod early_stopping;
pub mod history;
