//! Networks with dropout on one device against the CPU executor: a whole training step
//! (loss, every gradient, the weights after Adam), the masks of every launch of an epoch (the
//! step read from the per-launch uniform), and the seed deciding the weights.

use std::sync::Arc;

use super::tests::{assert_adam_step1_close, assert_close, synthetic};
use super::Replica;
use crate::cpu::{dropout_forward, CpuMlp, LayerInput};
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::tests::open_gpus;
use crate::gpu::Gpu;
use crate::spec::{Activation, DropoutMask, Init, Layer, Network, Optimizer};

/// Dense -> Dropout -> Dense (the one the brief names) and a deeper one with dropout on the
/// inputs (layer 0, where no input gradient is needed) and between two hidden layers.
fn specs() -> [Network; 2] {
    let a = Network::new(784).dense(65, Activation::Relu);
    let mut a = a;
    a.layers.push(Layer::dropout_seeded(0.3, 11));
    let a = a.dense(10, Activation::Identity);
    let mut b = Network::new(784);
    b.layers.push(Layer::dropout_seeded(0.2, 3));
    let mut b = b.dense(65, Activation::Gelu);
    b.layers.push(Layer::dropout_seeded(0.5, 4));
    let b = b.dense(33, Activation::Tanh).dense(10, Activation::Identity);
    [a, b]
}

/// A replica of `spec` with `rows` rows of the synthetic set resident, in order.
fn replica_with_data(gpu: &Gpu, spec: &Network, params: &[f32], rows: usize) -> (Replica, super::SourceId) {
    let data = synthetic(rows, 784, 10);
    let mut replica = Replica::new(gpu.clone(), spec, Optimizer::adam(1e-3), params, rows).expect("replica");
    let resident = Arc::new(DeviceDataset::upload(gpu, &data).expect("upload"));
    let order: Vec<u32> = (0..rows as u32).collect();
    let src = replica.add_source(resident, DeviceIndices::upload(gpu, &order, rows).unwrap()).unwrap();
    (replica, src)
}

/// One step of 128 rows on the GPU and on the CPU from the same weights: the loss, the
/// correct count, every gradient and every weight after Adam, with the tolerances of
/// `every_layer_kind_steps_as_its_cpu_twin` (tests.rs; derived there). A mask that differed
/// in one element would move the gradients by O(1), far outside them. The dropout layers'
/// outputs themselves are compared bit for bit with the CPU twin's, from the GPU's own input
/// to the layer (the products before it round differently on the two executors).
#[test]
fn a_step_with_dropout_matches_the_cpu() {
    let gpu = open_gpus(1).remove(0);
    for spec in specs() {
        let params = spec.layout().init(Init::He, 7);
        let (mut replica, src) = replica_with_data(&gpu, &spec, &params, 128);
        replica.clear_metrics();
        assert_eq!(replica.submit_epoch(src, 128, 0, &mut |_| Ok(())).expect("step"), 1);
        let metrics = replica.read_metrics().unwrap();
        let gpu_grads = replica.read_grads().unwrap();
        let gpu_params = replica.read_params().unwrap();
        check_dropout_outputs(&replica, &spec, 128, 1);

        let data = synthetic(128, 784, 10);
        let mut cpu = CpuMlp::new(spec.clone(), params.clone(), Optimizer::adam(1e-3)).unwrap();
        let (loss, correct) = cpu.train_step(&data.to_f32(), data.labels()).unwrap();
        let name = format!("{:?}", spec.layers);
        assert!(
            (metrics.train_loss_sum() as f32 - loss).abs() <= 1e-5 * loss.abs() * 128.0,
            "{name}: loss sum gpu {} cpu {loss}",
            metrics.train_loss_sum()
        );
        assert_eq!(metrics.train_correct() as u32, correct, "{name}: correct counts differ");
        assert_close(&format!("{name} grads"), &gpu_grads, cpu.grads(), 1e-4, 1e-5);
        assert_adam_step1_close(&name, &gpu_params, cpu.params(), cpu.grads(), (1e-3, 1e-7));
    }
}

/// Each dropout layer's output on the device, over the last launch's `rows` rows (optimizer
/// step `t`), against the CPU twin applied to the device's own input to it: bits.
fn check_dropout_outputs(replica: &Replica, spec: &Network, rows: usize, t: u64) {
    let widths = spec.widths();
    for (l, layer) in spec.layers.iter().enumerate() {
        let Some(mask) = DropoutMask::of_layer(layer, l, t) else { continue };
        let units = widths[l + 1];
        let input_buf = if l == 0 { &replica.work.x } else { &replica.work.h[l - 1] };
        let x = replica.gpu.read::<f32>(input_buf, 0, rows * units).unwrap();
        let got = replica.gpu.read::<f32>(&replica.work.h[l], 0, rows * units).unwrap();
        let mut want = vec![0.0f32; rows * units];
        dropout_forward(Some((&mask, 0)), LayerInput::Whole(&x), &mut want, rows, units).unwrap();
        if let Some(i) = (0..rows * units).find(|&i| got[i].to_bits() != want[i].to_bits()) {
            panic!(
                "layer {l} at step {t}: output [{}, {}] = {} on the GPU, {} from the CPU twin",
                i / units,
                i % units,
                got[i],
                want[i]
            );
        }
    }
}

/// An epoch of four launches of one recorded plan (three of 40 rows, a tail of 8), starting
/// after 10 steps: the last launch's masks are those of optimizer step 14, so every launch
/// read its own step from the per-launch uniform.
#[test]
fn each_launch_of_an_epoch_draws_its_own_step() {
    let gpu = open_gpus(1).remove(0);
    let spec = specs()[1].clone();
    let params = spec.layout().init(Init::He, 9);
    let (mut replica, src) = replica_with_data(&gpu, &spec, &params, 128);
    assert_eq!(replica.submit_epoch(src, 40, 10, &mut |_| Ok(())).expect("epoch"), 4);
    check_dropout_outputs(&replica, &spec, 8, 14);
}

/// The same seed trains the same weights (bits), on the GPU and on the CPU; another seed in
/// one dropout layer trains other weights.
#[test]
fn the_seed_decides_the_weights() {
    let gpu = open_gpus(1).remove(0);
    let spec = specs()[0].clone();
    let mut other = spec.clone();
    other.layers[1] = Layer::dropout_seeded(0.3, 12);
    let params = spec.layout().init(Init::He, 5);
    let data = synthetic(128, 784, 10);
    let gpu_weights = |spec: &Network| {
        let (mut replica, src) = replica_with_data(&gpu, spec, &params, 128);
        replica.submit_epoch(src, 32, 0, &mut |_| Ok(())).expect("epoch");
        replica.read_params().unwrap()
    };
    let cpu_weights = |spec: &Network| {
        let mut cpu = CpuMlp::new(spec.clone(), params.clone(), Optimizer::adam(1e-3)).unwrap();
        let x = data.to_f32();
        for s in 0..4 {
            cpu.train_step(&x[s * 32 * 784..(s + 1) * 32 * 784], &data.labels()[s * 32..(s + 1) * 32])
                .unwrap();
        }
        cpu.params().to_vec()
    };
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    for (what, run) in [("GPU", &gpu_weights as &dyn Fn(&Network) -> Vec<f32>), ("CPU", &cpu_weights)] {
        let (a, b, c) = (bits(run(&spec)), bits(run(&spec)), bits(run(&other)));
        assert_eq!(a, b, "{what}: the same seed trained other weights");
        assert_ne!(a, c, "{what}: another seed trained the same weights");
    }
}
