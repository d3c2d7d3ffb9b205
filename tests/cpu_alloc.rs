//! The CPU backend's training step and evaluation allocate nothing once their buffers have
//! grown to the batch: a counting global allocator (this binary's only test, so nothing else
//! allocates meanwhile) around steps taken after a warm-up.
//!
//! The steps run on one of rayon's threads, as the CPU executor runs them (`cpu/threads.rs`):
//! `CpuMlp`'s entry points called from elsewhere first hop onto one through rayon's global
//! queue, whose blocks the queue itself allocates now and then (one per 63 hops).

mod counting_alloc;

use counting_alloc::{allocations, warm_up_pool};
use wgtrain::cpu::CpuMlp;
use wgtrain::{Activation, Init, Network, Optimizer};

#[test]
fn warm_training_steps_and_evaluation_allocate_nothing() {
    let (rows, features) = (128, 784);
    let x: Vec<f32> = (0..rows * features).map(|i| (i % 255) as f32 / 255.0).collect();
    let labels: Vec<u32> = (0..rows as u32).map(|r| r % 10).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool");
    warm_up_pool(&pool);
    // The MNIST model, and the same with dropout after its hidden layer (its masks are drawn
    // in place, step by step).
    let with_dropout =
        Network::new(features).dense(64, Activation::Relu).dropout(0.2).dense(10, Activation::Identity);
    for spec in [Network::default(), with_dropout] {
        let name = format!("{:?}", spec.layers);
        let counted = steps_allocations(&pool, spec, &x, &labels);
        assert_eq!(counted, 0, "{name}: allocations in 10 warm training steps and an evaluation");
    }
}

/// Allocations in 10 warm training steps of `spec` and an evaluation, on `pool`.
fn steps_allocations(pool: &rayon::ThreadPool, spec: Network, x: &[f32], labels: &[u32]) -> usize {
    let (rows, features) = (labels.len(), spec.inputs());
    pool.install(|| {
        let params = spec.layout().init(Init::He, 1);
        let mut model = CpuMlp::new(spec, params, Optimizer::adam(1e-3)).expect("model");
        // Warm-up: the buffers grow to 128 rows (evaluation's chunks are as large).
        model.train_step(x, labels).expect("step");
        model.evaluate(x, labels).expect("evaluate");
        let before = allocations();
        for step in 0..10 {
            // Full batches and a smaller one, as an epoch's last batch is.
            let r = if step == 5 { 37 } else { rows };
            model.train_step(&x[..r * features], &labels[..r]).expect("step");
        }
        model.evaluate(x, labels).expect("evaluate");
        allocations() - before
    })
}
