//! Data parallel: the model mirrored on several devices, batches split across them, and the
//! gradients reduced on the host in a shared staging buffer.

mod mirrored;
mod reduce;
mod split;

pub use mirrored::{Mirrored, ParallelStats};
pub use reduce::reduce_into;
pub use split::{offsets, split_rows};
