//! The CPU reference backend: the same operations as the WGSL kernels, in `f32`, written
//! independently of the shaders.
//!
//! It has two jobs. It is the oracle the GPU tests compare against, so every op is one flat
//! function whose formula matches the kernel's documentation literally. And it is a real
//! executor ([`CpuMlp`]) for machines without a GPU adapter: the products run on a
//! register-blocked AVX-512 or AVX2 kernel (`gemm.rs`, chosen at run time; other CPUs use
//! `matrixmultiply`) that reads the weights where they lie and fuses each dense layer's bias,
//! activation and activation derivative into its epilogue, as the GPU's kernels do, and a
//! training step's optimizer update into the weight gradient's (same bits as a separate
//! update).
//!
//! On mostly-zero data (MNIST's pixels) the executor gathers the first layer's inputs as their
//! nonzeros, and that layer's forward product and weight gradient skip the zeros' terms with
//! the bits of the dense product (`sparse.rs` says why they are the same).
//!
//! Each op comes in two forms: an allocating one that is easy to call from tests
//! (`matmul`, `softmax_xent`, ...) and an `_into` one writing into a caller's buffer, which
//! [`CpuMlp`] uses so that a warm training step allocates nothing (`tests/cpu_alloc.rs`).
//!
//! Threads (`threads.rs`): a layer with many weights splits its inputs in two halves, and
//! each half's products, gradient rows, optimizer update and (in the executor) batch columns
//! run on their own thread, so that each core keeps its half of the weights and moments in
//! its cache (`layers/dense.rs`), and a layer that does not split computes its weight and
//! input gradients at once; other large products and updates are cut in blocks. The
//! executor runs its steps on a rayon thread so that each hand-off costs about a
//! microsecond. Nothing is cut by the number of threads in a way that changes a bit: one
//! thread or many give the same bits (tested).

mod activation;
mod aligned;
mod executor;
mod gather;
mod gemm;
mod layers;
mod matmul;
mod mlp;
mod optim;
mod pass;
mod reduce;
mod regression;
mod sigmoid_xent;
mod simd;
mod softmax_xent;
mod sparse;
mod threads;

pub use activation::{
    activation_backward, activation_backward_into, activation_forward, activation_forward_into,
};
pub(crate) use executor::CpuExecutor;
// The state helpers the CPU replica of a process group shares with the CPU executor.
#[cfg(feature = "mpi")]
pub(crate) use executor::{
    add_task_sums, gather_targets, read_state, restore_best, snapshot_best, write_state,
};
pub use matmul::{matmul, matmul_into, matmul_kernel};
pub use mlp::{task_sums_len, CpuMlp};
// The dropout layer's CPU twin, for the kernel's tests.
#[cfg(test)]
pub(crate) use layers::dropout::{forward as dropout_forward, input_grad as dropout_input_grad};
#[cfg(test)]
pub(crate) use layers::LayerInput;
pub use optim::{adam_step, sgd_step};

/// Deterministic values in [-1, 1) for the CPU kernels' tests (a 64-bit LCG, one stream per
/// seed).
#[cfg(test)]
pub(crate) fn test_values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The bit patterns of `v`, for the tests' bit-for-bit comparisons (-0 and NaN payloads
/// included).
#[cfg(test)]
pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
pub use reduce::{add_bias, column_sums, column_sums_into};
pub use regression::{regression_into, regression_metrics, RegressionKind, MSE_SUMS};
pub use sigmoid_xent::{sigmoid_xent_into, SIGMOID_SUMS};
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
