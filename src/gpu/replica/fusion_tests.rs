//! Fused launches against the separate ones they replace, on whole passes: two epochs of
//! training (with a tail batch) and an evaluation of the same replica, recorded fused and
//! unfused from the same weights, must leave the same bits in the parameters, gradients,
//! moments and metrics (the softmax head, each bias gradient in its weight-gradient product,
//! a narrow layer's whole backward in one launch: `dense_backward.wgsl`, and where the batch
//! is gathered into a texture, layer 0's weights packed by the gather and dZ written into its
//! texture by that one-launch backward; a layer's input, weights and dZ each packed once for
//! every texture product that reads them: `operands.rs`). Why bits: each fused kernel
//! performs the same f32 operations in the same order as the launches it replaces (see the
//! kernels' headers), and a texture holds the same floats as the buffer it was packed from.

use std::sync::Arc;

use super::operands::LayerTextures;
use super::record::PassKind;
use super::Replica;
use crate::data::{Dataset, Targets};
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::autotune::Policy;
use crate::gpu::kernels::tests::test_adapter;
use crate::gpu::kernels::{Matmul, MatmulCall, Variant};
use crate::gpu::{self, AdapterReport, AdapterSelection, Gpu};
use crate::spec::{Activation, Init, Layer, Loss, Network, Optimizer};

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

/// `rows` rows of `features` values in [-1, 1) with `outputs` regression targets each.
fn regression(rows: usize, features: usize, outputs: usize) -> Dataset {
    let mut s = 7u64;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let x: Vec<f32> = (0..rows * features).map(|_| next()).collect();
    let values = (0..rows * outputs).map(|_| next()).collect();
    Dataset::from_values(x, features, Targets::Values { values, outputs }).expect("valid data")
}

/// Dense -> Dropout -> Dense: the last layer's input gradient goes to the dropout layer (the
/// identity's derivative, read at its output).
fn with_dropout(inputs: usize, hidden: usize, activation: Activation, classes: usize) -> Network {
    let mut spec = Network::new(inputs).dense(hidden, activation);
    spec.layers.push(Layer::dropout_seeded(0.25, 7));
    spec.dense(classes, Activation::Identity)
}

/// What a run leaves: every buffer it trains, as bits, and its training step's launches.
struct Ran {
    state: Vec<Vec<u32>>,
    launches: usize,
    /// The training step's kernels, in encoding order.
    labels: Vec<&'static str>,
    /// Whether the device runs the subgroup matmul variants (subgroups of exactly 8).
    subgroups_of_8: bool,
}

/// Two epochs and an evaluation of `spec` under `loss` on `data`, fused or not, with the
/// matmul variants the tuner picks, or `policy` where given.
fn run(
    adapter: &AdapterReport,
    spec: &Network,
    (loss, data, batch): (Loss, &Dataset, usize),
    fused: bool,
    policy: Option<Policy>,
) -> Ran {
    let gpu: Gpu = gpu::open(&AdapterSelection::Indices(vec![adapter.index]), 1)
        .unwrap_or_else(|e| panic!("opening {}: {e}", adapter.label()))
        .remove(0);
    let params = spec.layout().init(Init::He, 5);
    let mut replica =
        Replica::new(gpu.clone(), spec, Optimizer::adam(1e-2), &params, batch).expect("replica");
    replica.set_loss(loss).expect("loss");
    replica.set_fused(fused);
    if let Some(policy) = policy {
        replica.kernels.tuner.set_policy(policy);
    }
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
    // The metrics buffer as it is: every sum of the loss (per-output ones for a regression).
    let metrics: Vec<f32> =
        gpu.read(&replica.metrics, 0, (replica.metrics.size() / 4) as usize).expect("metrics");
    let (mo, v) = replica.read_moments().expect("moments");
    let f32s = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let state = vec![
        f32s(&replica.read_params().expect("params")),
        f32s(&replica.read_grads().expect("grads")),
        f32s(&mo),
        f32s(&v),
        f32s(&metrics),
    ];
    let labels = replica
        .plans
        .iter()
        .find(|p| p.kind == PassKind::Train)
        .map(|p| p.dispatches.iter().flat_map(|d| d.flatten()).map(|d| d.label()).collect())
        .unwrap_or_default();
    Ran { state, launches: replica.dispatches_per_step(), labels, subgroups_of_8: gpu.has_subgroups_of(8) }
}

/// Every buffer of `got` as in `want`, bit for bit.
fn assert_same_bits(name: &str, got: &Ran, want: &Ran) {
    for (what, (g, w)) in
        ["params", "grads", "adam m", "adam v", "metrics"].iter().zip(got.state.iter().zip(&want.state))
    {
        let first = g.iter().zip(w).position(|(a, b)| a != b);
        assert!(first.is_none(), "{name}: {what} differ first at {first:?}");
    }
}

/// Fused and not: the same bits; the launches fewer fused counted per case (the softmax head
/// 1, each bias gradient in its product 1, each narrow layer's one-launch backward 2 where
/// the unfused path has dW, db and dX, and the packs of the unfused step less those of the
/// fused one, which shares its textures); and MNIST's step, exactly: 6 launches on every adapter. On lavapipe
/// and llvmpipe's GL the gather packs W1 and the narrow backward writes dZ1 into its texture
/// (8 launches before those, 9 before the narrow backward).
#[test]
fn fused_passes_leave_the_bits_of_unfused_ones() {
    let softmax = Loss::SoftmaxCrossEntropy;
    let mse = Loss::MeanSquaredError;
    // (spec, loss, rows, batch, launches fewer fused, narrow backward launches fused)
    let cases = [
        // MNIST's shape, 300 rows in batches of 128: a tail of 44.
        (Network::classifier(&[784, 64, 10], Activation::Relu), softmax, 300, 128, 4, 1),
        // Odd widths and 17 classes, batches of 37: a tail of 26.
        (Network::classifier(&[13, 29, 17], Activation::Tanh), softmax, 100, 37, 4, 1),
        // Deeper: the narrow last layer over a wide one (not narrow), batches of 32, a tail of 4.
        (Network::classifier(&[10, 64, 64, 10], Activation::Relu), softmax, 100, 32, 5, 1),
        // A middle layer whose products run from textures (on lavapipe and GL): its input, W
        // and dZ each packed or written once and read by both products that take them.
        (Network::classifier(&[16, 128, 96, 10], Activation::Relu), softmax, 300, 128, 5, 1),
        // Deeper: dZ of the 128 -> 96 layer comes from the product above (a buffer); packed
        // once, for its dW and its dX.
        (Network::classifier(&[16, 128, 96, 64, 10], Activation::Relu), softmax, 300, 128, 6, 1),
        // GELU below, batches of 300: more dX blocks than one workgroup's worth per row group.
        (Network::classifier(&[9, 6, 3], Activation::Gelu), softmax, 400, 300, 4, 1),
        // Dropout below the narrow layer: its input gradient goes to the dropout layer.
        (with_dropout(30, 21, Activation::Sigmoid, 10), softmax, 90, 32, 4, 1),
        // One layer: fused unless the batch is gathered into a texture; no layer below.
        (Network::classifier(&[20, 10], Activation::Relu), softmax, 50, 16, 1, 0),
        // A regression: two narrow layers in a row (37 -> 19 -> 3), no softmax head.
        (Network::classifier(&[13, 37, 19, 3], Activation::Relu), mse, 90, 32, 5, 2),
        // A 64 -> 1 output layer under the mean squared error.
        (Network::classifier(&[8, 64, 1], Activation::Sigmoid), mse, 70, 16, 3, 1),
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
        for (spec, loss, rows, batch, fewer, narrow) in &cases {
            let (loss, rows, batch, fewer, narrow) = (*loss, *rows, *batch, *fewer, *narrow);
            let data = match loss {
                Loss::SoftmaxCrossEntropy => pixels(rows, spec.inputs(), spec.outputs()),
                _ => regression(rows, spec.inputs(), spec.outputs()),
            };
            let want = run(adapter, spec, (loss, &data, batch), false, None);
            let got = run(adapter, spec, (loss, &data, batch), true, None);
            let name = format!("{} {:?} {loss:?} rows={rows} batch={batch}", adapter.label(), spec.widths());
            assert_same_bits(&name, &got, &want);
            let count = |r: &Ran, label: &str| r.labels.iter().filter(|l| **l == label).count();
            let narrow_launches = |r: &Ran| count(r, "dense_backward") + count(r, "dense_backward_tex");
            assert_eq!(narrow_launches(&got), narrow, "{name}: narrow backward launches {:?}", got.labels);
            assert_eq!(narrow_launches(&want), 0, "{name}: unfused {:?}", want.labels);
            assert_eq!(got.launches, got.labels.len(), "{name}: launches counted");
            // The fused step packs each shared operand once, or not at all (the gather packs W1,
            // the one-launch backward writes dZ into its texture): the unfused step's packs
            // less the fused step's are launches fewer too.
            let fewer = (fewer + count(&want, "pack_texture"))
                .checked_sub(count(&got, "pack_texture"))
                .unwrap_or_else(|| {
                    panic!("{name}: more packs fused {:?} than not {:?}", got.labels, want.labels)
                });
            // The one-layer model's head may not fuse (a batch in a texture): at most fewer.
            if spec.layers.len() == 1 {
                assert!(
                    got.launches + fewer <= want.launches,
                    "{name}: {:?} vs {:?}",
                    got.labels,
                    want.labels
                );
            } else {
                assert_eq!(
                    got.launches + fewer,
                    want.launches,
                    "{name}: {:?} vs {:?}",
                    got.labels,
                    want.labels
                );
            }
            // Layer 1's forward, dW and dX all read textures (on lavapipe and GL): unfused they
            // pack h0, W1 (the forward), h0, dZ1 (dW), dZ1, W1 (dX); fused h0 and W1 once, and
            // dZ1 once (packed, or arriving in the texture the narrow layer's one launch writes).
            let shared_packs = match spec.widths().as_slice() {
                [16, 128, 96, 10] => Some(2),
                [16, 128, 96, 64, 10] => Some(3),
                _ => None,
            };
            if let Some(packs) = shared_packs.filter(|_| adapter.name.starts_with("llvmpipe")) {
                for (ran, packs) in [(&got, packs), (&want, 6)] {
                    assert_eq!(count(ran, "pack_texture"), packs, "{name}: {:?}", ran.labels);
                }
                assert!(got.labels.iter().any(|l| l.starts_with("mm_tex_abt")), "{name}: {:?}", got.labels);
            }
            if spec.widths() == [784, 64, 10] {
                assert_eq!(got.launches, 6, "{name}: MNIST's step {:?}", got.labels);
                assert_eq!(count(&got, "pack_texture"), 0, "{name}: {:?}", got.labels);
                if adapter.name.starts_with("llvmpipe") {
                    // The texture path, every pack folded into a launch that was there anyway.
                    for label in ["gather_tex4_pack", "dense_backward_tex"] {
                        assert_eq!(count(&got, label), 1, "{name}: {label} in {:?}", got.labels);
                    }
                    // dW1 from textures: the subgroup variant where the device has subgroups of
                    // 8 (lavapipe on 256-bit vectors; `matmul.rs`'s test asserts that it does),
                    // the 8x8 block elsewhere (GL has no subgroups in wgpu).
                    let dw = if got.subgroups_of_8 { "mm_tex_atb_sg" } else { "mm_tex_atb" };
                    assert_eq!(count(&got, dw), 1, "{name}: {dw} in {:?}", got.labels);
                    assert_eq!(count(&want, "pack_texture"), 2, "{name}: unfused {:?}", want.labels);
                }
            }
        }
    }
}

/// A texture variant for `call` where A arrives packed, a buffer variant where it does not.
fn textures_when_a_packed(matmul: &Matmul, call: &MatmulCall<'_>, a_packed: bool) -> Variant {
    let texture = Variant::ALL.into_iter().find(|v| v.reads_textures() && matmul.supports(*v, call));
    texture.filter(|_| a_packed).unwrap_or(Variant::Rb4x4)
}

/// The opposite: a buffer variant where A arrives packed, a texture variant where it does not.
fn textures_unless_a_packed(matmul: &Matmul, call: &MatmulCall<'_>, a_packed: bool) -> Variant {
    textures_when_a_packed(matmul, call, !a_packed)
}

/// The textures of a fused pass (`operands.rs`) are planned with the tuner's pick for each
/// reader priced as it is recorded, A packed ahead or not: under tuners whose pick turns on
/// that flag alone, one way and the other, every fused pass records (a texture planned for
/// a product that then picks a buffer variant is an error) and leaves the bits of the unfused
/// one. The shapes: dZ written above and packed, a dropout layer between texture products,
/// a regression's last layer, and the batch gathered into a texture below them.
#[test]
fn texture_plans_price_each_reader_as_it_is_recorded() {
    let softmax = Loss::SoftmaxCrossEntropy;
    let mut dropout = Network::new(16).dense(128, Activation::Relu);
    dropout.layers.push(Layer::dropout_seeded(0.25, 3));
    let dropout = dropout.dense(96, Activation::Relu).dense(10, Activation::Identity);
    let cases = [
        (Network::classifier(&[16, 128, 96, 64, 10], Activation::Relu), softmax),
        (dropout, softmax),
        (Network::classifier(&[16, 128, 96, 64], Activation::Tanh), Loss::MeanSquaredError),
        (Network::classifier(&[784, 128, 96, 10], Activation::Relu), softmax),
    ];
    let adapter = test_adapter();
    let policies: [(&str, Policy); 2] = [
        ("textures when A is packed", textures_when_a_packed),
        ("textures unless", textures_unless_a_packed),
    ];
    for (spec, loss) in &cases {
        let data = match loss {
            Loss::SoftmaxCrossEntropy => pixels(200, spec.inputs(), spec.outputs()),
            _ => regression(200, spec.inputs(), spec.outputs()),
        };
        for (what, policy) in policies {
            let want = run(adapter, spec, (*loss, &data, 64), false, Some(policy));
            let got = run(adapter, spec, (*loss, &data, 64), true, Some(policy));
            let name = format!("{:?} {loss:?}, {what}", spec.widths());
            assert_same_bits(&name, &got, &want);
            // Not vacuous: the fused step reads operands from textures.
            let textured = got.labels.iter().filter(|l| l.starts_with("mm_tex")).count();
            assert!(textured >= 2, "{name}: {:?}", got.labels);
        }
    }
}

/// What `operands.rs` plans for each layer of a fused training pass of `spec` over 64
/// host-written rows under a tuner `policy`: the shared operands, each with what fills it.
fn planned(spec: &Network, policy: Policy) -> Vec<String> {
    let adapter = test_adapter();
    let gpu: Gpu = gpu::open(&AdapterSelection::Indices(vec![adapter.index]), 1)
        .unwrap_or_else(|e| panic!("opening {}: {e}", adapter.label()))
        .remove(0);
    let params = spec.layout().init(Init::He, 5);
    let mut replica = Replica::new(gpu, spec, Optimizer::adam(1e-2), &params, 64).expect("replica");
    replica.set_fused(true);
    replica.kernels.tuner.set_policy(policy);
    let plan = LayerTextures::for_pass(&replica, 64, true, None, None).expect("plan");
    let describe = |t: &LayerTextures| {
        let shared = [("input", &t.input), ("weights", &t.weights), ("dz", &t.dz)];
        let mut words: Vec<String> = shared
            .iter()
            .filter_map(|(name, s)| s.as_ref().map(|s| format!("{name} {:?}", s.fill)))
            .collect();
        if t.dx_reads_dz {
            words.push("dx reads dz".into());
        }
        words.join(", ")
    };
    plan.iter().map(describe).collect()
}

/// The plan itself, layer by layer, under the two tuners above (16-128-96-64-10: a narrow
/// last layer whose one launch writes dz of the layer below). A texture is planned only
/// where every reader picks a texture variant priced as it will be recorded: with A packed
/// (inputs, and dz for dX) or not (the weights' forward when the input is not packed).
#[test]
fn texture_plans_follow_the_tuners_picks() {
    let spec = Network::classifier(&[16, 128, 96, 64, 10], Activation::Relu);
    let when_packed = [
        "",
        "input Pack, weights Pack, dz Pack, dx reads dz",
        "input Pack, weights Pack, dz Above, dx reads dz",
        "",
    ];
    assert_eq!(planned(&spec, textures_when_a_packed), when_packed);
    // Nothing priced with A packed reads textures: only the weights, and dz from above for dW.
    let unless_packed = ["", "weights Pack", "weights Pack, dz Above", ""];
    assert_eq!(planned(&spec, textures_unless_a_packed), unless_packed);
}
