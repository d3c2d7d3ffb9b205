//! The CPU reference backend: the same operations as the WGSL kernels, in `f32`, written
//! independently of the shaders.
//!
//! It has two jobs. It is the oracle the GPU tests compare against, so every op is one flat
//! function whose formula matches the kernel's documentation literally. And it is a real
//! executor ([`CpuMlp`]) for machines without a GPU adapter, so the products run on
//! `matrixmultiply` (AVX-512/AVX2 kernels), and a training step reuses its buffers.
//!
//! Each op comes in two forms: an allocating one that is easy to call from tests
//! (`matmul`, `softmax_xent`, ...) and an `_into` one writing into a caller's buffer, which
//! [`CpuMlp`] uses so that a training step allocates none of its own buffers. (sgemm itself
//! takes a packing buffer of up to a few hundred KiB from the allocator in each call, which
//! the allocator recycles; the crate offers no way to pass one in.)
//!
//! Threads: the products of an MNIST-sized model run on the calling thread, and only
//! products of at least 2^26 multiply-adds are cut into row blocks over rayon's threads. The
//! small ones are too small to share: on the 2-core VM this was measured on, an MNIST epoch at
//! batch 32 took 0.37-0.43 s with matrixmultiply's `threading` feature (its pool's workers
//! spun and yielded against rayon's: a third of the CPU samples were in the scheduler) and as
//! much with every product over 2^20 cut into row blocks on rayon, against 0.24-0.28 s on one
//! thread; batch 128 took 0.21-0.25 s threaded against 0.20-0.23 s on one thread.

mod activation;
mod executor;
mod layers;
mod matmul;
mod mlp;
mod optim;
mod pass;
mod reduce;
mod regression;
mod softmax_xent;

pub use activation::{
    activation_backward, activation_backward_into, activation_forward, activation_forward_into,
};
pub(crate) use executor::CpuExecutor;
pub use matmul::{matmul, matmul_into};
pub use mlp::CpuMlp;
pub use optim::{adam_step, sgd_step};
pub use reduce::{add_bias, column_sums, column_sums_into};
pub use regression::{mse_into, regression_metrics, MSE_SUMS};
pub use softmax_xent::{softmax, softmax_xent, softmax_xent_into, xent_loss, XentOut};

use crate::error::{Error, Result};

/// `rows * cols` for a tensor named `what`, refusing zero sizes and overflow, so that every op
/// rejects an empty or impossible shape the same way.
fn elements(what: &str, rows: usize, cols: usize) -> Result<usize> {
    if rows == 0 || cols == 0 {
        return Err(Error::Shape(format!("{what} has a zero size: [{rows}, {cols}]")));
    }
    rows.checked_mul(cols).ok_or_else(|| Error::Shape(format!("{what} of [{rows}, {cols}] overflows usize")))
}

/// Checks that a slice named `what` holds exactly `expected` floats.
fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(Error::Shape(format!("{what} holds {len} values, expected {expected}")));
    }
    Ok(())
}
