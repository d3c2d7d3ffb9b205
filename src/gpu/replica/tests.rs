//! The model on one device against the CPU executor, layer by layer: the GPU recordings of
//! `layers/` and their CPU twins in `cpu/layers/` must compute the same step.

use std::sync::Arc;

use super::Replica;
use crate::cpu::{task_sums_len, CpuMlp, MSE_SUMS};
use crate::data::{Dataset, Targets};
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::tests::open_gpus;
use crate::spec::{Activation, Init, Loss, Network, Optimizer};

/// A deterministic pseudo-random u8 dataset with learnable labels (label = which quarter the
/// first pixel falls in, so a model can fit it).
pub(super) fn synthetic(rows: usize, features: usize, classes: usize) -> Dataset {
    let mut s = 12345u64;
    let mut px = Vec::with_capacity(rows * features);
    for _ in 0..rows * features {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        px.push((s >> 56) as u8);
    }
    let labels = (0..rows).map(|r| (px[r * features] as usize * classes / 256) as u8).collect();
    Dataset::new(px, labels, features, classes).expect("valid synthetic data")
}

/// Relative comparison with an absolute floor scaled to the vector's magnitude.
/// The weights after Adam's first step from the same weights, the GPU's against the CPU's,
/// given the CPU's gradients `g` and that the GPU's are within `rel |g_i| + floor_frac max|g|`
/// of them ([`assert_close`]). Bias-corrected, the first update is `lr g / (|g| + eps)`, whose
/// derivative in g is `lr eps / (|g| + eps)^2`: a gradient off by `d` moves it by at most
/// `lr min(2, d eps / (|g| - d + eps)^2)`. Where `|g| >> d` that is far below `lr`, so a
/// skipped or reversed update fails; the rest allows a few roundings of the update and of
/// `w + update`.
pub(super) fn assert_adam_step1_close(
    what: &str,
    gpu: &[f32],
    cpu: &[f32],
    g: &[f32],
    (lr, eps): (f32, f32),
) {
    let max_g = g.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, ((w_gpu, w_cpu), g)) in gpu.iter().zip(cpu).zip(g).enumerate() {
        let d = 1e-4 * g.abs() + 1e-5 * max_g;
        let slope = d * eps / ((g.abs() - d).max(0.0) + eps).powi(2);
        let tol = lr * slope.min(2.0) + 1e-6 * lr + 4.0 * f32::EPSILON * (w_cpu.abs() + lr);
        assert!(
            (w_gpu - w_cpu).abs() <= tol,
            "{what} params[{i}]: gpu {w_gpu} cpu {w_cpu} (g {g}, tol {tol:e})"
        );
    }
}

pub(super) fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], rel: f32, floor_frac: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let floor = floor_frac * scale;
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let tol = rel * c.abs() + floor;
        assert!((g - c).abs() <= tol, "{what}[{i}]: gpu {g} cpu {c} (diff {} > tol {tol})", (g - c).abs());
    }
}

/// Per layer kind and activation: one step of a network with two hidden layers of that kind
/// and activation (their forward with the fused epilogue, their backward with the activation
/// derivative fused into the product above them) and a dense identity output, on the GPU and
/// on the CPU twins of the same layers, from the same weights and batch: the loss, the
/// correct count, every gradient and every weight after the update.
/// Gradients: each is a sum over the batch of products of f32 values computed with
/// different summation orders and (on the GPU) exp/log with a few ULP of error: we allow
/// 1e-4 relative, with a floor of 1e-5 of the largest gradient for those that cancel to ~0.
/// Weights after one Adam step differ by at most the difference of the two updates; the
/// update lr * g / (|g| + eps) is steepest near g = 0 where a gradient error d moves it by
/// up to lr * d / eps, so we compare weights with that bound for the floor above.
#[test]
fn every_layer_kind_steps_as_its_cpu_twin() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Gelu, Activation::Sigmoid] {
        let gpu = open_gpus(1).remove(0);
        let spec = Network::classifier(&[784, 65, 33, 10], act);
        let params = spec.layout().init(Init::He, 7);
        let opt = Optimizer::adam(1e-3);
        let data = synthetic(128, 784, 10);

        let mut replica = Replica::new(gpu.clone(), &spec, opt, &params, 128).expect("replica");
        let resident = Arc::new(DeviceDataset::upload(&gpu, &data).expect("upload"));
        let order: Vec<u32> = (0..128).collect();
        let src = replica.add_source(resident, DeviceIndices::upload(&gpu, &order, 128).unwrap()).unwrap();
        replica.clear_metrics();
        let steps = replica.submit_epoch(src, 128, 0, &mut |_| Ok(())).expect("step");
        assert_eq!(steps, 1);
        let metrics = replica.read_metrics().unwrap();
        let gpu_grads = replica.read_grads().unwrap();
        let gpu_params = replica.read_params().unwrap();

        let mut cpu = CpuMlp::new(spec.clone(), params.clone(), opt).unwrap();
        let (loss, correct) = cpu.train_step(&data.to_f32(), data.labels()).unwrap();
        let cpu_grads_after = cpu.grads().to_vec();

        assert!(
            (metrics.train_loss_sum() as f32 - loss).abs() <= 1e-5 * loss.abs() * 128.0,
            "{act:?}: loss sum gpu {} cpu {loss}",
            metrics.train_loss_sum()
        );
        assert_eq!(metrics.train_correct() as u32, correct, "{act:?}: correct counts differ");
        assert_close(&format!("{act:?} grads"), &gpu_grads, &cpu_grads_after, 1e-4, 1e-5);
        let name = format!("{act:?}");
        assert_adam_step1_close(&name, &gpu_params, cpu.params(), &cpu_grads_after, (1e-3, 1e-7));
    }
}

/// Pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// One mean-squared-error step on odd shapes (13 features, hidden 37 and 19, 3 outputs, 45
/// rows gathered in reverse order from a 50-row table) on the GPU and on the CPU from the same
/// weights: the loss sum, the per-output sums and every gradient. Tolerances as in the test
/// above (sums over the batch in different orders: 1e-4 relative, a floor of 1e-5 of the
/// largest value).
#[test]
fn a_mean_squared_error_step_matches_the_cpu() {
    let gpu = open_gpus(1).remove(0);
    let (rows, table, outputs) = (45usize, 50usize, 3usize);
    let spec = Network::classifier(&[13, 37, 19, outputs], Activation::Relu);
    let params = spec.layout().init(Init::He, 11);
    let opt = Optimizer::adam(1e-3);
    let targets = Targets::Values { values: values(table * outputs, 2), outputs };
    let data = Dataset::from_values(values(table * 13, 1), 13, targets).unwrap();
    let order: Vec<u32> = (0..rows as u32).rev().map(|r| r + 3).collect();

    let mut replica = Replica::new(gpu.clone(), &spec, opt, &params, rows).expect("replica");
    replica.set_loss(Loss::MeanSquaredError).unwrap();
    let resident = Arc::new(DeviceDataset::upload(&gpu, &data).expect("upload"));
    let src = replica.add_source(resident, DeviceIndices::upload(&gpu, &order, table).unwrap()).unwrap();
    replica.clear_metrics();
    assert_eq!(replica.submit_epoch(src, rows, 0, &mut |_| Ok(())).expect("step"), 1);
    let metrics = replica.read_metrics().unwrap();
    let gpu_grads = replica.read_grads().unwrap();

    let batch = data.subset(&order).unwrap();
    let mut cpu = CpuMlp::new(spec.clone(), params, opt).unwrap();
    let mut sums = vec![0.0f32; MSE_SUMS * outputs];
    let y = batch.values().unwrap().0;
    let loss =
        cpu.compute_gradients_with(Loss::MeanSquaredError, &batch.to_f32(), y, rows, &mut sums).unwrap();

    assert_close("loss sum", &[metrics.train.loss as f32], &[loss], 1e-5, 0.0);
    let task: Vec<f32> = metrics.train.task.iter().map(|&v| v as f32).collect();
    assert_close("per-output sums", &task, &sums, 1e-5, 1e-6);
    assert_close("grads", &gpu_grads, cpu.grads(), 1e-4, 1e-5);
}

/// One step of `loss` on `data` (13 features, hidden 37 and 19, `outputs` outputs, 45 rows
/// gathered in reverse order from 50), on the GPU and on the CPU from the same weights: the
/// loss sum, the task sums (the right-output count for the sigmoid cross-entropy, exact) and
/// every gradient, with the tolerances of the mean squared error's step above.
fn step_matches_the_cpu(loss: Loss, data: &Dataset, outputs: usize) {
    let gpu = open_gpus(1).remove(0);
    let (rows, table) = (45usize, data.len());
    let spec = Network::classifier(&[13, 37, 19, outputs], Activation::Relu);
    let params = spec.layout().init(Init::He, 11);
    let opt = Optimizer::adam(1e-3);
    let order: Vec<u32> = (0..rows as u32).rev().map(|r| r + 3).collect();

    let mut replica = Replica::new(gpu.clone(), &spec, opt, &params, rows).expect("replica");
    replica.set_loss(loss).unwrap();
    let resident = Arc::new(DeviceDataset::upload(&gpu, data).expect("upload"));
    let src = replica.add_source(resident, DeviceIndices::upload(&gpu, &order, table).unwrap()).unwrap();
    replica.clear_metrics();
    assert_eq!(replica.submit_epoch(src, rows, 0, &mut |_| Ok(())).expect("step"), 1);
    let metrics = replica.read_metrics().unwrap();
    let gpu_grads = replica.read_grads().unwrap();

    let batch = data.subset(&order).unwrap();
    let mut cpu = CpuMlp::new(spec.clone(), params, opt).unwrap();
    let mut sums = vec![0.0f32; task_sums_len(loss, outputs)];
    let y: Vec<f32> = match batch.values() {
        Some((v, _)) => v.to_vec(),
        None => batch.labels().iter().map(|&l| l as f32).collect(),
    };
    let cpu_loss = cpu.compute_gradients_with(loss, &batch.to_f32(), &y, rows, &mut sums).unwrap();

    let what = format!("{loss:?}");
    assert_close(&format!("{what} loss sum"), &[metrics.train.loss as f32], &[cpu_loss], 1e-5, 0.0);
    if loss == Loss::SigmoidCrossEntropy {
        let right = metrics.train.correct * outputs as f64;
        assert_eq!(right.round() as f32, sums[0], "{what}: right outputs");
        assert!(metrics.train.task.is_empty(), "{what}: no per-output sums");
    } else {
        let task: Vec<f32> = metrics.train.task.iter().map(|&v| v as f32).collect();
        assert_close(&format!("{what} per-output sums"), &task, &sums, 1e-5, 1e-6);
    }
    assert_close(&format!("{what} grads"), &gpu_grads, cpu.grads(), 1e-4, 1e-5);
}

#[test]
fn robust_regression_steps_match_the_cpu() {
    let outputs = 3;
    // Targets spread over [-4, 4): residuals on both sides of every delta tested.
    let targets =
        Targets::Values { values: values(50 * outputs, 2).iter().map(|v| v * 4.0).collect(), outputs };
    let data = Dataset::from_values(values(50 * 13, 1), 13, targets).unwrap();
    for loss in [Loss::MeanAbsoluteError, Loss::huber(), Loss::Huber { delta: 0.05 }] {
        step_matches_the_cpu(loss, &data, outputs);
    }
}

#[test]
fn sigmoid_cross_entropy_steps_match_the_cpu() {
    let outputs = 3;
    let hot = values(50 * outputs, 2).iter().map(|&v| if v > 0.3 { 1.0 } else { 0.0 }).collect();
    let multi =
        Dataset::from_values(values(50 * 13, 1), 13, Targets::MultiHot { values: hot, classes: outputs });
    step_matches_the_cpu(Loss::SigmoidCrossEntropy, &multi.unwrap(), outputs);
    // Binary labels: one output, the labels gathered as u32 and read as 0.0 and 1.0.
    let labels = values(50, 3).iter().map(|&v| u32::from(v > 0.0)).collect();
    let binary = Dataset::from_values(values(50 * 13, 1), 13, Targets::Classes { labels, classes: 2 });
    step_matches_the_cpu(Loss::SigmoidCrossEntropy, &binary.unwrap(), 1);
}
