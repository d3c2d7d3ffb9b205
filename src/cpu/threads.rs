//! How the CPU backend shares work between rayon's threads.
//!
//! Work is only ever split where the split cannot change a bit: elementwise loops (the
//! optimizers, the batch gather) and products whose every output is summed by one thread in
//! order of `k` (`gemm.rs`). The loss, summed over rows in order, stays on one thread.
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

/// Parts per thread on a rayon thread: on a machine shared with other work, a thread may be
/// descheduled in the middle of its part, and with several parts each the other threads take
/// over the ones it has not started instead of waiting for all of them.
const PARTS_PER_THREAD: usize = 4;

/// How many parts to cut `work` units into: up to [`PARTS_PER_THREAD`] per thread, each of at
/// least `min_in_pool` units, on a rayon thread; one per thread of at least `min_outside`
/// units elsewhere; 1 when the work is smaller.
pub(super) fn tasks(work: usize, min_in_pool: usize, min_outside: usize) -> usize {
    let threads = rayon::current_num_threads();
    let (most, min) = if rayon::current_thread_index().is_some() {
        (threads * PARTS_PER_THREAD, min_in_pool)
    } else {
        (threads, min_outside)
    };
    if threads == 1 {
        return 1;
    }
    most.min(work / min.max(1)).max(1)
}
