//! How the CPU backend shares work between rayon's threads.
//!
//! Work is only ever split where the split cannot change a bit: elementwise loops (the
//! optimizers, the batch gather), products whose every output is summed by one thread in
//! order of `k` (`gemm.rs`), and the two input halves of a large dense layer, which are
//! summed apart whatever the number of threads (`layers/dense.rs`). The loss, summed over
//! rows in order, stays on one thread.
//!
//! What a split costs depends on where it is asked for. On one of rayon's threads,
//! `rayon::join` pushes the second half onto the thread's own queue, where the other thread,
//! awake from the previous split a few microseconds earlier, takes it in about a microsecond
//! (and if nobody does, the caller runs it itself). From any other thread the halves go
//! through the global queue and the caller sleeps until both are done: tens of microseconds on
//! a VM, the cost that had kept every product of the MNIST model on one thread. So the
//! executors run their steps on a rayon thread ([`on_pool`]), and [`tasks`] asks for more work
//! per thread when it is called from elsewhere.

/// Runs `f` on one of rayon's threads (the calling thread if it is one): one hop through the
/// global queue, after which every split inside `f` is cheap.
pub(super) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

/// How many parts to cut `work` units into: one per thread, each of at least `min_in_pool`
/// units on a rayon thread or `min_outside` elsewhere; 1 when the work is smaller.
///
/// One part per thread rather than more: with two, `rayon::join` runs the first on the
/// calling thread and the other thread takes the second, so each thread keeps working on the
/// same data from one step to the next; smaller parts, taken by whichever thread comes first,
/// kept moving data between the cores' caches (on the 2-core VM, with a neighbour on one
/// core, the best MNIST step at batch 32 took 68-90 us with one part per thread, 90-105 us
/// with four).
pub(super) fn tasks(work: usize, min_in_pool: usize, min_outside: usize) -> usize {
    let min = if rayon::current_thread_index().is_some() { min_in_pool } else { min_outside };
    rayon::current_num_threads().min(work / min.max(1)).max(1)
}
