//! Data parallel: the model mirrored on several devices, batches split across them, and the
//! gradients reduced on the host in a shared staging buffer. Uses only the executors below
//! it (the model on one device) and the gradient-reducer seam of `exec.rs`.

mod batch_split;
mod host_reduce;
mod mirrored;

pub use batch_split::{offsets, split_rows};
pub use host_reduce::reduce_into;
pub(crate) use mirrored::Mirrored;
