//! The model on one device against the CPU executor, layer by layer: the GPU recordings of
//! `layers/` and their CPU twins in `cpu/layers/` must compute the same step.

use std::sync::Arc;

use super::Replica;
use crate::cpu::CpuMlp;
use crate::data::Dataset;
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::tests::open_gpus;
use crate::spec::{Activation, Init, Network, Optimizer};

/// A deterministic pseudo-random u8 dataset with learnable labels (label = which quarter the
/// first pixel falls in, so a model can fit it).
fn synthetic(rows: usize, features: usize, classes: usize) -> Dataset {
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
fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], rel: f32, floor_frac: f32) {
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
        let max_g = cpu_grads_after.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        let weight_tol = 1e-3 * (1e-5 * max_g) / 1e-7 + 1e-6;
        for (i, (g, c)) in gpu_params.iter().zip(cpu.params()).enumerate() {
            assert!((g - c).abs() <= weight_tol, "{act:?} params[{i}]: gpu {g} cpu {c}");
        }
    }
}
