//! A counting global allocator for the tests that check a warm CPU step allocates nothing
//! (`tests/cpu_alloc.rs`, `tests/cpu_alloc_losses.rs`): declaring this module makes it the
//! binary's allocator, so keep such a binary to one test, that nothing else allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts every allocation and reallocation, then lets the system allocator do it.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and reallocations so far.
pub fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Gets the pool's one-time allocations over with: its threads start (each allocates its
/// queues as it starts, which on a busy machine may be late), and each steals a job once
/// (a thread's first steal registers it with crossbeam's epoch collector).
pub fn warm_up_pool(pool: &rayon::ThreadPool) {
    pool.broadcast(|_| ());
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
