//! Fused launches against the separate ones they replace, on whole passes: two epochs of
//! training (with a tail batch) and an evaluation of the same replica, recorded fused and
//! unfused from the same weights, must leave the same bits in the parameters, gradients,
//! moments and metrics. Why bits: each fused kernel performs the same f32 operations in the
//! same order as the launches it replaces (see the kernels' headers).

use std::sync::Arc;

use super::Replica;
use crate::data::Dataset;
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::tests::test_adapter;
use crate::gpu::{self, AdapterReport, AdapterSelection, Gpu};
use crate::spec::{Activation, Init, Network, Optimizer};

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

/// Everything a run leaves on the device, as bits; and the launches of its training step.
fn run(
    adapter: &AdapterReport,
    spec: &Network,
    data: &Dataset,
    batch: usize,
    fused: bool,
) -> (Vec<Vec<u32>>, usize) {
    let gpu: Gpu = gpu::open(&AdapterSelection::Indices(vec![adapter.index]), 1)
        .unwrap_or_else(|e| panic!("opening {}: {e}", adapter.label()))
        .remove(0);
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
    (state, replica.dispatches_per_step())
}

/// Fused (the softmax head of `head.rs`, each bias gradient in its weight-gradient product)
/// and not: the same bits, a launch fewer per layer and one for the head; and a one-layer
/// model, whose head may not fuse (its batch may be gathered into a texture), the same bits.
#[test]
fn fused_passes_leave_the_bits_of_unfused_ones() {
    let cases = [
        // MNIST's shape, 300 rows in batches of 128: a tail of 44.
        (Network::classifier(&[784, 64, 10], Activation::Relu), 300, 128, 3),
        // Odd widths and 17 classes, batches of 37: a tail of 26.
        (Network::classifier(&[13, 29, 17], Activation::Tanh), 100, 37, 3),
        // One layer: fused unless the batch is gathered into a texture.
        (Network::classifier(&[20, 10], Activation::Relu), 50, 16, 1),
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
        for (spec, rows, batch, fewer) in &cases {
            let (rows, batch, fewer) = (*rows, *batch, *fewer);
            let data = pixels(rows, spec.inputs(), spec.outputs());
            let (want, unfused_launches) = run(adapter, spec, &data, batch, false);
            let (got, fused_launches) = run(adapter, spec, &data, batch, true);
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
