//! Whole-model checks: a GPU training step equals the CPU reference's (gradients and
//! weights), a 10-step loss curve agrees, and a short MNIST run learns.

mod common;

use common::fixture;
use wgtrain::data::{default_mnist_dir, load_mnist, Dataset};
use wgtrain::{Activation, Backend, Network, Optimizer, Trainer, TrainerOptions};

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

/// Ten Adam steps through the public Trainer on both backends, same seed and shuffles: the
/// per-epoch losses agree to 1e-4 relative and the weights stay within 1e-4 (each Adam step
/// moves a weight by at most ~lr = 1e-3, and the backends disagree only in rounding).
#[test]
fn ten_step_loss_curve_matches_the_cpu_reference() {
    let data = synthetic(320, 784, 10);
    let run = |backend: Backend| {
        let options = TrainerOptions {
            spec: Network::default(),
            batch_size: 32,
            epochs: 2,
            validation_split: 0.0,
            seed: 3,
            backend,
            ..TrainerOptions::default()
        };
        let mut t = Trainer::new(options).expect("trainer");
        let report = t.fit(&data, None, |_| {}).expect("fit");
        (
            report.history.epochs.iter().map(|e| e.get("loss").unwrap_or(f32::NAN)).collect::<Vec<_>>(),
            t.parameters().unwrap(),
        )
    };
    let (gpu_loss, gpu_params) = run(Backend::Devices(vec![fixture().gpu.clone()]));
    let (cpu_loss, cpu_params) = run(Backend::Cpu);
    assert_eq!(gpu_loss.len(), 2);
    assert!(gpu_loss[1] < gpu_loss[0], "loss should fall: {gpu_loss:?}");
    assert_close("epoch losses", &gpu_loss, &cpu_loss, 1e-4, 0.0);
    for (i, (g, c)) in gpu_params.iter().zip(&cpu_params).enumerate() {
        assert!((g - c).abs() <= 1e-4, "params[{i}] drifted: gpu {g} cpu {c}");
    }
}

/// A short run on 2,000 real MNIST images: the loss falls and the test accuracy passes 85%.
#[test]
fn short_mnist_run_learns() {
    let mnist = load_mnist(default_mnist_dir().expect("bundled MNIST found")).expect("bundled MNIST");
    let train = mnist.train.take(2000);
    let options = TrainerOptions {
        epochs: 8,
        batch_size: 32,
        validation_split: 0.1,
        backend: Backend::Devices(vec![fixture().gpu.clone()]),
        ..TrainerOptions::default()
    };
    let mut t = Trainer::new(options).unwrap();
    let report = t.fit(&train, None, |_| {}).unwrap();
    let losses: Vec<f32> = report.history.epochs.iter().map(|e| e.get("loss").unwrap_or(f32::NAN)).collect();
    assert!(losses.last() < losses.first(), "training loss did not fall: {losses:?}");
    let test = t.evaluate(&mnist.test).unwrap();
    let accuracy = test.get("accuracy").unwrap_or(0.0);
    assert!(accuracy > 0.85, "test accuracy {accuracy} after {losses:?}");
}

#[test]
fn bad_options_and_data_are_errors() {
    let gpu = Backend::Devices(vec![fixture().gpu.clone()]);
    let bad = |o: TrainerOptions| Trainer::new(o).err().map(|e| e.to_string());
    let zero_lr =
        TrainerOptions { optimizer: Optimizer::adam(0.0), backend: gpu.clone(), ..Default::default() };
    assert!(bad(zero_lr).is_some_and(|m| m.contains("learning rate")), "lr 0 must be rejected");
    let zero_batch = TrainerOptions { batch_size: 0, backend: gpu.clone(), ..Default::default() };
    assert!(bad(zero_batch).is_some_and(|m| m.contains("batch")), "batch 0 must be rejected");
    let split = TrainerOptions { validation_split: 1.0, backend: gpu.clone(), ..Default::default() };
    assert!(bad(split).is_some(), "a validation split of 1 leaves nothing to train on");

    let mut t = Trainer::new(TrainerOptions { backend: gpu, ..Default::default() }).unwrap();
    let wrong = synthetic(10, 7, 10);
    let err = t.fit(&wrong, None, |_| {}).expect_err("7 features into a 784-input model");
    assert!(err.to_string().contains("7 features"), "{err}");
}

/// The same seed on the same adapter gives the same weights, bit for bit; another seed does not.
#[test]
fn same_seed_same_result() {
    let data = synthetic(500, 784, 10);
    let run = |seed: u64| {
        let options = TrainerOptions {
            batch_size: 50,
            epochs: 2,
            seed,
            backend: Backend::Devices(vec![fixture().gpu.clone()]),
            ..TrainerOptions::default()
        };
        let mut t = Trainer::new(options).unwrap();
        t.fit(&data, None, |_| {}).unwrap();
        t.parameters().unwrap()
    };
    let (a, b, c) = (run(4), run(4), run(5));
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "same seed, different weights");
    assert!(a.iter().zip(&c).any(|(x, y)| x != y), "another seed should give other weights");
}

/// A buffer over the device's limits is an `OutOfMemory` error naming the limits, not a panic;
/// so is a model whose workspace cannot fit.
#[test]
fn over_limit_buffers_are_errors() {
    let gpu = &fixture().gpu;
    let too_big = gpu.device.limits().max_storage_buffer_binding_size + 16;
    let err =
        gpu.storage_buffer("huge", too_big, wgpu::BufferUsages::empty()).expect_err("over the binding limit");
    assert!(matches!(err, wgtrain::Error::OutOfMemory { .. }), "{err}");
    assert!(err.to_string().contains("per binding"), "{err}");

    // A hidden layer just wide enough that one batch of its activations is over the device's
    // binding limit (which differs by device: 128 MiB on lavapipe, gigabytes on big GPUs).
    let rows = 1usize << 16;
    let limit = gpu.device.limits().max_storage_buffer_binding_size;
    let hidden = (limit / (4 * rows as u64)) as usize + 1;
    let options = TrainerOptions {
        spec: Network::classifier(&[784, hidden, 10], Activation::Relu),
        batch_size: rows,
        backend: Backend::Devices(vec![gpu.clone()]),
        ..TrainerOptions::default()
    };
    let what = format!("a {rows} x {hidden} activation buffer is over the {limit}-byte binding limit");
    let err = Trainer::new(options).err().expect(&what);
    assert!(matches!(err, wgtrain::Error::OutOfMemory { .. }), "{what}: {err}");
}

/// Evaluating twice gives the same numbers (the evaluation set is uploaded per call and
/// released after it), and a second `fit` with the epoch budget spent runs no further epoch.
#[test]
fn repeated_evaluate_and_fit() {
    let data = synthetic(300, 784, 10);
    let options = TrainerOptions {
        batch_size: 30,
        epochs: 1,
        backend: Backend::Devices(vec![fixture().gpu.clone()]),
        ..TrainerOptions::default()
    };
    let mut t = Trainer::new(options).unwrap();
    t.fit(&data, None, |_| {}).unwrap();
    let (a, b) = (t.evaluate(&data).unwrap(), t.evaluate(&data).unwrap());
    assert_eq!(a, b, "the same weights must evaluate the same");
    assert_eq!(t.epochs_completed(), 1);
    let again = t.fit(&data, None, |_| {}).unwrap();
    assert_eq!(again.epochs_run, 1, "epochs counts across fits: options.epochs = 1 is already reached");
}
