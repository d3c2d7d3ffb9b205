//! Fused launches against the separate ones they replace, on whole passes: two epochs of
//! training (with a tail batch) and an evaluation of the same replica, recorded fused and
//! unfused from the same weights, must leave the same bits in the parameters, gradients,
//! moments and metrics. Why bits: each fused kernel performs the same f32 operations in the
//! same order as the launches it replaces (see the kernels' headers).
//! A device limited to wgpu's default of eight storage buffers per stage records the head's
//! backward apart, with the same bits.

use std::sync::Arc;

use super::Replica;
use crate::data::Dataset;
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::tests::test_adapter;
use crate::gpu::{self, AdapterReport, AdapterSelection, Gpu};
use crate::spec::{Activation, Init, Layer, Network, Optimizer};

/// Pseudo-random pixels with labels from the first pixel (as `tests.rs`'s `synthetic`).
fn pixels(rows: usize, features: usize, classes: usize) -> Dataset {
    let mut s = 99u64;
    let px: Vec<u8> = (0..rows * features)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect();
    let labels = (0..rows).map(|r| (px[r * features] as usize * classes / 256) as u8).collect();
    Dataset::new(px, labels, features, classes).expect("valid data")
}

/// Everything a run leaves on the device, as bits; the launches of its training step; and
/// whether the device runs the head's backward in the head's launch.
fn run(gpu: Gpu, spec: &Network, data: &Dataset, batch: usize, fused: bool) -> (Vec<Vec<u32>>, usize, bool) {
    let params = spec.layout().init(Init::He, 5);
    let mut replica =
        Replica::new(gpu.clone(), spec, Optimizer::adam(1e-2), &params, batch).expect("replica");
    replica.set_fused(fused);
    let resident = Arc::new(DeviceDataset::upload(&gpu, data).expect("upload"));
    // A shuffled order, so the gather and the tail batch read scattered rows.
    let order: Vec<u32> = (0..data.len() as u32).map(|r| (r * 7 + 3) % data.len() as u32).collect();
    let src = replica.add_source(resident, DeviceIndices::upload(&gpu, &order, data.len()).unwrap()).unwrap();
    replica.clear_metrics();
    let mut steps = 0;
    for epoch in 0..2 {
        steps += replica.submit_epoch(src, batch, steps as u64, &mut |_| Ok(())).expect("epoch");
        assert!(epoch > 0 || steps == data.len().div_ceil(batch), "one step per batch, the tail included");
    }
    replica.submit_eval(src, batch).expect("evaluation");
    let m = replica.read_metrics().expect("metrics");
    let sums = [m.train.loss, m.train.correct, m.eval.loss, m.eval.correct];
    let (mo, v) = replica.read_moments().expect("moments");
    let f32s = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let state = vec![
        f32s(&replica.read_params().expect("params")),
        f32s(&replica.read_grads().expect("grads")),
        f32s(&mo),
        f32s(&v),
        sums.iter().map(|&s| (s as f32).to_bits()).collect(),
    ];
    (state, replica.dispatches_per_step(), replica.kernels.head.backward_supported())
}

/// A device on `adapter` with every limit it supports, as the library opens one.
fn open(adapter: &AdapterReport) -> Gpu {
    gpu::open(&AdapterSelection::Indices(vec![adapter.index]), 1)
        .unwrap_or_else(|e| panic!("opening {}: {e}", adapter.label()))
        .remove(0)
}

/// Dense -> Dropout -> Dense: the head's input gradient goes to the dropout layer (the
/// identity's derivative, read at its output).
fn with_dropout(inputs: usize, hidden: usize, activation: Activation, classes: usize) -> Network {
    let mut spec = Network::new(inputs).dense(hidden, activation);
    spec.layers.push(Layer::dropout_seeded(0.25, 7));
    spec.dense(classes, Activation::Identity)
}

/// Fused (the softmax head of `head.rs` with the last layer's backward where the device
/// binds nine storage buffers, each bias gradient in its weight-gradient product) and not:
/// the same bits, a launch fewer per layer and one for the head, and where the backward
/// joins the head two more (its dW and dX launches); a one-layer model, whose head may not
/// fuse (its batch may be gathered into a texture), the same bits.
#[test]
fn fused_passes_leave_the_bits_of_unfused_ones() {
    // (spec, rows, batch, launches fewer without the head's backward, with it)
    let cases = [
        // MNIST's shape, 300 rows in batches of 128: a tail of 44.
        (Network::classifier(&[784, 64, 10], Activation::Relu), 300, 128, 3, 5),
        // Odd widths and 17 classes, batches of 37: a tail of 26.
        (Network::classifier(&[13, 29, 17], Activation::Tanh), 100, 37, 3, 5),
        // Two chunks of 256 rows (batches of 300, a tail of 100), GELU's derivative.
        (Network::classifier(&[9, 6, 3], Activation::Gelu), 400, 300, 3, 5),
        // Dropout below the head: its input gradient goes to the dropout layer.
        (with_dropout(30, 21, Activation::Sigmoid, 10), 90, 32, 3, 5),
        // Too wide a hidden layer for the backward (dX: 32 x 75 blocks): the head alone.
        (Network::classifier(&[12, 300, 10], Activation::Relu), 200, 128, 3, 3),
        // One layer: fused unless the batch is gathered into a texture (no dX either way).
        (Network::classifier(&[20, 10], Activation::Relu), 50, 16, 1, 1),
    ];
    // The test adapter, and the first adapter of each other backend found (llvmpipe's GL beside
    // lavapipe): the fused kernels use a storage barrier and a grid two deep, which each
    // driver must honour.
    let mut adapters = vec![test_adapter().clone()];
    for a in gpu::list_adapters() {
        if adapters.iter().all(|b| b.backend != a.backend) {
            adapters.push(a);
        }
    }
    for adapter in &adapters {
        for (spec, rows, batch, fewer, fewer_backward) in &cases {
            let (rows, batch) = (*rows, *batch);
            let data = pixels(rows, spec.inputs(), spec.outputs());
            let (want, unfused_launches, _) = run(open(adapter), spec, &data, batch, false);
            let (got, fused_launches, backward) = run(open(adapter), spec, &data, batch, true);
            let fewer = if backward { *fewer_backward } else { *fewer };
            let name = format!("{} {:?} rows={rows} batch={batch}", adapter.label(), spec.widths());
            for (what, (g, w)) in
                ["params", "grads", "adam m", "adam v", "metrics"].iter().zip(got.iter().zip(&want))
            {
                let first = g.iter().zip(w).position(|(a, b)| a != b);
                assert!(first.is_none(), "{name}: {what} differ first at {first:?}");
            }
            assert!(
                fused_launches + fewer <= unfused_launches,
                "{name}: {fused_launches} launches fused, {unfused_launches} unfused"
            );
        }
    }
}

/// A caller's device that keeps wgpu's default of eight storage buffers per stage cannot bind
/// the head's backward (nine): it records the head alone and the backward apart, the 9
/// launches of MNIST's step before the backward joined the head, with the same bits as the
/// device of every limit (7 launches) and as the unfused step.
#[test]
fn a_device_of_eight_storage_buffers_records_the_backward_apart() {
    let report = test_adapter();
    let instance = gpu::instance();
    let (adapter, _) = gpu::enumerate(&instance)
        .into_iter()
        .find(|(_, r)| r.index == report.index)
        .unwrap_or_else(|| panic!("{} not found again", report.label()));
    let desc = wgpu::DeviceDescriptor {
        label: Some("eight storage buffers"),
        required_limits: wgpu::Limits { max_storage_buffers_per_shader_stage: 8, ..adapter.limits() },
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).expect("device");
    let eight = Gpu::from_device(device, queue);
    let spec = Network::classifier(&[784, 64, 10], Activation::Relu);
    let data = pixels(300, 784, 10);
    let (got, launches, backward) = run(eight, &spec, &data, 128, true);
    assert!(!backward, "{}: a device of eight storage buffers offers the head's backward", report.label());
    let (want, all_launches, all_backward) = run(open(report), &spec, &data, 128, true);
    let (unfused, unfused_launches, _) = run(open(report), &spec, &data, 128, false);
    assert!(all_backward, "{}: the device of every limit should bind nine", report.label());
    assert_eq!(launches, all_launches + 2, "two launches more without the backward in the head");
    assert_eq!(launches + 3, unfused_launches, "the head and the two bias gradients still fused");
    for (what, g, w, u) in named_states(&got, &want, &unfused) {
        assert!(g == w && g == u, "{}: {what} differ", report.label());
    }
}

/// The five states of [`run`] side by side, named.
fn named_states<'a>(
    a: &'a [Vec<u32>],
    b: &'a [Vec<u32>],
    c: &'a [Vec<u32>],
) -> impl Iterator<Item = (&'static str, &'a Vec<u32>, &'a Vec<u32>, &'a Vec<u32>)> {
    ["params", "grads", "adam m", "adam v", "metrics"]
        .into_iter()
        .zip(a)
        .zip(b)
        .zip(c)
        .map(|(((n, x), y), z)| (n, x, y, z))
}
