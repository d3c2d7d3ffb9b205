//! Data parallel: the model mirrored on several devices, batches split across them, and the
//! gradients reduced on the host in a shared staging buffer. Uses only the executors below
//! it (the model on one device, the CPU reference) and the gradient-reducer seam of
//! `exec.rs`.
//!
//! Across processes (feature `mpi`): every process's replicas are one global list
//! (`group.rs`), each process reduces its own replicas as in one process and then the
//! processes exchange their sums (`mpi/`, `MpiGroup`); the CPU reference takes part as one
//! replica per process (`cpu_shard.rs`).

mod batch_split;
#[cfg(feature = "mpi")]
mod cpu_shard;
// Without the `mpi` feature only the one-process part of the group is used.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
mod group;
mod host_reduce;
mod mirrored;
#[cfg(feature = "mpi")]
mod mpi;

#[cfg(feature = "mpi")]
pub(crate) use cpu_shard::CpuShard;
#[cfg(feature = "mpi")]
pub(crate) use group::Shard;
pub(crate) use mirrored::Mirrored;
#[cfg(feature = "mpi")]
pub use mpi::{MpiGroup, DEFAULT_TIMEOUT};
