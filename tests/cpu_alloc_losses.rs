//! The CPU training step on f32 targets allocates nothing once its buffers have grown to the
//! batch, whatever the loss (sigmoid cross-entropy, MAE, Huber, MSE): a counting global
//! allocator (this binary's only test, so nothing else allocates meanwhile) around steps taken
//! after a warm-up, as `cpu_alloc.rs` does for the softmax cross-entropy.

mod counting_alloc;

use counting_alloc::{allocations, warm_up_pool};
use wgtrain::cpu::{task_sums_len, CpuMlp};
use wgtrain::{Activation, Init, Loss, Network, Optimizer};

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
            let before = allocations();
            for step in 0..10 {
                // Full batches and a smaller one, as an epoch's last batch is.
                let r = if step == 5 { 37 } else { rows };
                model.train_step_with(loss, &x[..r * features], &y[..r * outputs], &mut sums).expect("step");
            }
            allocations() - before
        });
        assert_eq!(counted, 0, "{loss:?}: allocations in 10 warm training steps");
    }
}
