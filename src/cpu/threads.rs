//! How the CPU backend shares work between the threads of its own rayon pool, which flush
//! subnormal floats to zero ([`pool`]).
//!
//! Work is only ever split where the split cannot change a bit: elementwise loops (the
//! optimizers, the batch gather), products whose every output is summed by one thread in
//! order of `k` (`gemm.rs`), the two input halves of a large dense layer, which are
//! summed apart whatever the number of threads, and a small layer's weight and input
//! gradients, which are independent (`layers/dense.rs`). The loss, summed over
//! rows in order, stays on one thread.
//!
//! What a split costs depends on where it is asked for. On one of rayon's threads,
//! `rayon::join` pushes the second half onto the thread's own queue, where the other thread,
//! awake from the previous split a few microseconds earlier, takes it in about a microsecond
//! (and if nobody does, the caller runs it itself). From any other thread the halves go
//! through the global queue and the caller sleeps until both are done: tens of microseconds on
//! a VM, the cost that had kept every product of the MNIST model on one thread. So the
//! executors run their steps on a thread of the pool ([`on_pool`]), and [`tasks`] asks for
//! more work per thread when it is called from elsewhere.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Runs `f` on one of the CPU backend's threads (the calling thread if it is one): one hop
/// through the pool's queue, after which every split inside `f` is cheap. Where that pool
/// could not be started, on rayon's global pool as before.
pub(super) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) if pool.current_thread_index().is_none() => pool.install(f),
        Some(_) => f(),
        None if rayon::current_thread_index().is_some() => f(),
        None => rayon::scope(|_| f()),
    }
}

/// [`on_pool`], with the pool's other threads kept awake while `f` runs: each polls for work
/// (`rayon::yield_now`) instead of going to sleep between the splits inside `f`, so a split
/// is taken at once rather than after a sleeping thread wakes. For loops of many small steps.
///
/// Why it cannot deadlock: the pollers are queued before anything in `f`, so a thread that
/// steals takes a poller first (thieves take the oldest job); the caller never runs one
/// while `f` is running, and once `f` has returned (or unwound) each poller sees `done` and
/// ends.
pub(super) fn on_pool_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    on_pool(|| {
        let others = rayon::current_num_threads().saturating_sub(1);
        if others == 0 {
            return f();
        }
        let done = AtomicBool::new(false);
        rayon::scope(|s| {
            for _ in 0..others {
                s.spawn(|_| {
                    while !done.load(Ordering::Acquire) {
                        if rayon::yield_now() != Some(rayon::Yield::Executed) {
                            std::hint::spin_loop();
                        }
                    }
                });
            }
            // Set when `f` returns or unwinds: a panic in `f` (a bug: the backend returns its
            // errors) must reach the caller, not leave the pollers spinning and the scope
            // waiting for them forever.
            let _stop = StopOnDrop(&done);
            f()
        })
    })
}

/// Sets its flag when dropped: on return and on unwinding alike.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The CPU backend's own rayon pool (as many threads as rayon's global one), whose threads
/// treat subnormal floats as zero, in and out ([`flush_subnormals`]). Its own, so that the
/// host application's threads keep their floating-point state.
///
/// Why: on Intel cores an add or multiply with a subnormal operand or result takes a
/// microcode assist of a hundred cycles or more, and training walks some values through the
/// subnormal range (Adam's first moment, for one, decays by 0.9 a step once a weight's
/// gradient is exactly zero). On this project's 2-core Xeon the MNIST epoch at batch 32 took
/// 0.19 s with subnormals and 0.113 s without (BENCHMARKS.md, "Subnormals on the CPU").
/// WGSL lets the GPU flush them too, and TensorFlow's CPU threads do.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(rayon::current_num_threads())
            .thread_name(|i| format!("wgtrain-cpu-{i}"))
            .start_handler(|_| flush_subnormals())
            .build()
            .ok()
            .inspect(start_every_thread)
    })
    .as_ref()
}

/// Has every thread of `pool` start, run a job and look for work in the others' queues, and
/// each thread have a job taken from its own, so that the one-time allocations that come with
/// these (a thread's queues as it starts; its registration with crossbeam's epoch collector on
/// its first attempt to steal, empty queue or not) happen here rather than in some later
/// training step, whose warm steps allocate nothing (`tests/cpu_alloc*.rs`).
fn start_every_thread(pool: &rayon::ThreadPool) {
    if pool.current_num_threads() < 2 {
        return;
    }
    for owner in 0..pool.current_num_threads() {
        pool.broadcast(|ctx| {
            if ctx.index() == owner {
                // The second half can only run on another thread: the first waits for it.
                let both = std::sync::Barrier::new(2);
                rayon::join(|| both.wait(), || both.wait());
            }
        });
    }
}

/// Sets this thread to flush subnormal results to zero and read subnormal inputs as zero
/// (x86-64's FTZ and DAZ bits of MXCSR); elsewhere nothing changes.
fn flush_subnormals() {
    #[cfg(target_arch = "x86_64")]
    {
        const FTZ: u32 = 1 << 15;
        const DAZ: u32 = 1 << 6;
        let mut csr: u32 = 0;
        // SAFETY: MXCSR is part of x86-64's SSE state; stmxcsr writes it to `csr`, ldmxcsr
        // loads it back with two bits set, which change only how this thread's float
        // instructions treat values below the normal range.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
            csr |= FTZ | DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly));
        }
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

#[cfg(test)]
mod tests {
    use super::{on_pool, on_pool_awake};
    use std::hint::black_box;

    /// A product below the normal range: 1e-41, a subnormal where nothing flushes it.
    fn tiny() -> f32 {
        black_box(1e-38f32) * black_box(1e-3f32)
    }

    /// The backend's threads flush subnormals to zero; the caller's thread is left as it was.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_backend_flushes_subnormals_on_its_own_threads_only() {
        assert!(tiny() > 0.0 && !tiny().is_normal(), "the test thread keeps subnormals");
        assert_eq!(on_pool(tiny), 0.0, "flushed on the backend's thread");
        let (a, b) = on_pool(|| rayon::join(tiny, tiny));
        assert_eq!((a, b), (0.0, 0.0), "on both of a split's threads");
        // A subnormal input reads as zero there too: 1e-41 * 1e30 would be 1e-11.
        let input = tiny();
        assert_eq!(on_pool(move || black_box(input) * black_box(1e30f32)), 0.0);
        assert!(tiny() > 0.0, "the test thread still keeps subnormals");
    }

    /// A panic inside the kept-awake pool reaches the caller instead of leaving the pollers
    /// spinning (which hung the test binary before the flag was set on unwinding too).
    #[test]
    fn a_panic_with_the_pool_kept_awake_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| on_pool_awake(|| -> u32 { panic!("a bug") }));
        assert!(caught.is_err(), "the panic came back");
        assert_eq!(on_pool_awake(|| rayon::join(|| 1, || 2)), (1, 2), "the pool works after it");
    }

    /// Many small splits with the other threads polling: every half runs once, the result
    /// comes back, and the pollers end (a deadlock would hang here); again from inside the
    /// pool, and with a split nested in a split.
    #[test]
    fn the_pool_kept_awake_runs_every_split_and_returns() {
        let halves =
            |n: u64| -> u64 { (0..n).map(|i| rayon::join(|| i, || 2 * i)).map(|(a, b)| a + b).sum() };
        let want: u64 = (0..10_000u64).map(|i| 3 * i).sum();
        assert_eq!(on_pool_awake(|| halves(10_000)), want);
        assert_eq!(on_pool(|| on_pool_awake(|| halves(10_000))), want);
        let nested = on_pool_awake(|| rayon::join(|| halves(1000), || on_pool_awake(|| halves(1000))));
        let small: u64 = (0..1000u64).map(|i| 3 * i).sum();
        assert_eq!(nested, (small, small));
    }
}
