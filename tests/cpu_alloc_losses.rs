//! The CPU training step on f32 targets allocates nothing once its buffers have grown to the
//! batch, whatever the loss (sigmoid cross-entropy, MAE, Huber, MSE): a counting global
//! allocator (this binary's only test, so nothing else allocates meanwhile) around steps taken
//! after a warm-up, as `cpu_alloc.rs` does for the softmax cross-entropy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wgtrain::cpu::{task_sums_len, CpuMlp};
use wgtrain::{Activation, Init, Loss, Network, Optimizer};

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

#[test]
fn warm_steps_on_f32_targets_allocate_nothing() {
    let (rows, features, outputs) = (128, 20, 3);
    let x: Vec<f32> = (0..rows * features).map(|i| (i % 255) as f32 / 255.0).collect();
    let y: Vec<f32> = (0..rows * outputs).map(|i| (i % 2) as f32).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool");
    warm_up_pool(&pool);
    for loss in [Loss::SigmoidCrossEntropy, Loss::MeanAbsoluteError, Loss::huber(), Loss::MeanSquaredError] {
        let counted = pool.install(|| {
            let spec = Network::classifier(&[features, 64, outputs], Activation::Relu);
            let params = spec.layout().init(Init::He, 1);
            let mut model = CpuMlp::new(spec, params, Optimizer::adam(1e-3)).expect("model");
            let mut sums = vec![0.0f32; task_sums_len(loss, outputs)];
            // Warm-up: the buffers grow to 128 rows.
            model.train_step_with(loss, &x, &y, &mut sums).expect("step");
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for step in 0..10 {
                // Full batches and a smaller one, as an epoch's last batch is.
                let r = if step == 5 { 37 } else { rows };
                model.train_step_with(loss, &x[..r * features], &y[..r * outputs], &mut sums).expect("step");
            }
            ALLOCATIONS.load(Ordering::Relaxed) - before
        });
        assert_eq!(counted, 0, "{loss:?}: allocations in 10 warm training steps");
    }
}

/// Gets the pool's one-time allocations over with: its threads start (each allocates its
/// queues as it starts, which on a busy machine may be late), and each steals a job once
/// (a thread's first steal registers it with crossbeam's epoch collector).
fn warm_up_pool(pool: &rayon::ThreadPool) {
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
