//! A data set larger than one storage binding trains on a GPU: its rows are streamed through
//! the device in chunks (the replica's `stream` module) instead of being refused. The test
//! opens its own device with wgpu's default 128 MiB binding limit (lavapipe's own limit; a
//! big GPU allows more, and would otherwise hold this set resident), trains one epoch on a
//! generated 145 MB f32 table and checks the weights and the evaluation against the CPU
//! executor on the same data.

mod common;

use common::test_adapter;
use wgtrain::data::{Dataset, Targets};
use wgtrain::gpu::{enumerate, instance, Gpu};
use wgtrain::{Activation, Backend, Error, Network, Trainer, TrainerOptions};

/// wgpu's default `max_storage_buffer_binding_size`, and lavapipe's.
const BINDING: u64 = 128 << 20;

/// A device on the test adapter whose storage bindings hold at most [`BINDING`] bytes.
fn device_with_128_mib_bindings() -> Gpu {
    let want = test_adapter();
    let instance = instance();
    let (adapter, _) = enumerate(&instance)
        .into_iter()
        .find(|(_, r)| r.index == want.index)
        .unwrap_or_else(|| panic!("adapter {} is gone", want.label()));
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: BINDING.min(adapter.limits().max_storage_buffer_binding_size),
        ..adapter.limits()
    };
    let desc = wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc))
        .unwrap_or_else(|e| panic!("opening {} with 128 MiB bindings: {e}", want.label()));
    Gpu::from_device(device, queue)
}

/// `rows` x `features` values in [-1, 1) from a fixed LCG; the label says whether the first
/// four features sum above zero (learnable by the first layer).
fn table(rows: usize, features: usize) -> Dataset {
    let mut s = 2024u64;
    let values: Vec<f32> = (0..rows * features)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let labels =
        (0..rows).map(|r| u32::from(values[r * features..r * features + 4].iter().sum::<f32>() > 0.0));
    let targets = Targets::Classes { labels: labels.collect(), classes: 2 };
    Dataset::from_values(values, features, targets).expect("a valid table")
}

/// 33,000 rows x 1,100 f32 features (145.2 MB, over the 134.2 MB binding) train one epoch on
/// the GPU as on the CPU. The two executors differ only in the order of f32 sums (the same
/// bound as `ten_step_loss_curve_matches_the_cpu_reference` in tests/training.rs): each Adam
/// step moves a weight by about lr = 1e-3 at most, so rounding differences carried through the
/// epoch's 258 steps stay far below 1e-4; the epoch loss and the evaluation loss agree to 1e-4
/// relative. The evaluation of the same set streams too. Data parallel, which does not stream,
/// refuses the set with an error saying what to do.
#[test]
fn a_table_larger_than_one_binding_trains_as_on_the_cpu() {
    let gpu = device_with_128_mib_bindings();
    let data = table(33_000, 1_100);
    let bytes = (data.len() * data.features() * 4) as u64;
    assert!(bytes > gpu.device.limits().max_storage_buffer_binding_size, "the set must exceed a binding");
    let options = |backend: Backend| TrainerOptions {
        spec: Network::classifier(&[1_100, 8, 2], Activation::Relu),
        batch_size: 128,
        epochs: 1,
        validation_split: 0.0,
        seed: 11,
        backend,
        ..TrainerOptions::default()
    };
    let run = |backend: Backend| {
        let mut t = Trainer::new(options(backend)).expect("trainer");
        let report = t.fit(&data, None, |_| {}).expect("fit");
        let loss = report.history.epochs[0].get("loss").expect("a training loss");
        let eval = t.evaluate(&data).expect("evaluate").get("loss").expect("an evaluation loss");
        (loss, eval, t.parameters().expect("parameters"))
    };
    let (gpu_loss, gpu_eval, gpu_params) = run(Backend::Devices(vec![gpu.clone()]));
    let (cpu_loss, cpu_eval, cpu_params) = run(Backend::Cpu);
    assert!((gpu_loss - cpu_loss).abs() <= 1e-4 * cpu_loss.abs(), "loss: gpu {gpu_loss} cpu {cpu_loss}");
    assert!(
        (gpu_eval - cpu_eval).abs() <= 1e-4 * cpu_eval.abs(),
        "evaluation: gpu {gpu_eval} cpu {cpu_eval}"
    );
    assert!(gpu_eval < std::f32::consts::LN_2, "one epoch learns something: evaluation loss {gpu_eval}");
    let drift = gpu_params.iter().zip(&cpu_params).map(|(g, c)| (g - c).abs()).fold(0.0f32, f32::max);
    println!("loss gpu {gpu_loss} cpu {cpu_loss}; evaluation gpu {gpu_eval} cpu {cpu_eval}; largest weight difference {drift:.1e}");
    for (i, (g, c)) in gpu_params.iter().zip(&cpu_params).enumerate() {
        assert!((g - c).abs() <= 1e-4, "params[{i}]: gpu {g} cpu {c}");
    }

    // Data parallel keeps every replica's rows resident: it refuses the set, saying what to do.
    let pair = Backend::Devices(vec![gpu, device_with_128_mib_bindings()]);
    let mut t = Trainer::new(options(pair)).expect("a trainer on two devices");
    match t.fit(&data, None, |_| {}) {
        Err(Error::Config(msg)) => assert!(msg.contains("train on one device"), "{msg}"),
        other => panic!("data parallel over a set it cannot hold: expected Error::Config, got {other:?}"),
    }
}
