//! Datasets: IDX/MNIST loading, validation splits.
