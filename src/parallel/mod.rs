//! Data parallel: the model mirrored on several devices, batches split across them, and the
//! gradients reduced on the host in a shared staging buffer. Uses only the executors below
//! it (the model on one device) and the gradient-reducer seam of [`crate::exec`].
//!
//! The replicas are a slice of a global list of replicas (`group.rs`), so that the replicas
//! of several processes can train one model.

mod batch_split;
// Only the one-process part of the group is used so far.
#[allow(dead_code)]
mod group;
mod host_reduce;
mod mirrored;

pub use batch_split::{offsets, split_rows};
pub use host_reduce::reduce_into;
pub(crate) use mirrored::Mirrored;
