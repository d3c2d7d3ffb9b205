//! How the CPU backend shares work between rayon's threads.
//!
//! Work is only ever split where the split cannot change a bit: products whose every output
//! is summed by one thread in order of `k` (`gemm.rs`).
//!
//! What a split costs depends on where it is asked for. On one of rayon's threads,
//! `rayon::join` pushes the second half onto the thread's own queue, where the other thread,
//! awake from the previous split a few microseconds earlier, takes it in about a microsecond
//! (and if nobody does, the caller runs it itself). From any other thread the halves go
//! through the global queue and the caller sleeps until both are done: tens of microseconds on
//! a VM, the cost that had kept every product of the MNIST model on one thread. So [`tasks`]
//! asks for more work per thread when it is called from elsewhere.

/// How many parts to cut `work` units into: one per thread, each of at least `min_in_pool`
/// units on a rayon thread or `min_outside` elsewhere; 1 when the work is smaller.
pub(super) fn tasks(work: usize, min_in_pool: usize, min_outside: usize) -> usize {
    let min = if rayon::current_thread_index().is_some() { min_in_pool } else { min_outside };
    rayon::current_num_threads().min(work / min.max(1)).max(1)
}
