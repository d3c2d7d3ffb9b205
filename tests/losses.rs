//! The sigmoid cross-entropy (binary and multi-label), the mean absolute error and Huber's
//! loss through the [`Trainer`], on the CPU executor, on one device (lavapipe in CI) and on two mirrored replicas:
//! small synthetic problems a linear boundary separates, so a 16-unit network must reach a
//! high held-out score; the two backends' `val_loss` curves agree; targets the loss cannot
//! use are refused with clear errors before any weight changes; and early stopping watches
//! `val_binary_accuracy`, maximised under `Mode::Auto`.

mod common;

use common::{fixture, open_gpus};
use wgtrain::data::{Dataset, Targets};
use wgtrain::{Activation, Backend, EarlyStopping, Error, Loss, Network, Optimizer, Trainer, TrainerOptions};

const ROWS: usize = 800;
const FEATURES: usize = 6;

/// Features in [-1, 1) from a small LCG, `[ROWS, FEATURES]`.
fn features(seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..ROWS * FEATURES)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// `w · x` of row `r` for a fixed weight vector per output `j`.
fn score(x: &[f32], r: usize, j: usize) -> f32 {
    let w: [[f32; FEATURES]; 3] =
        [[1.0, 0.5, -0.7, 0.0, 0.3, 0.0], [-0.4, 1.0, 0.0, 0.8, 0.0, -0.2], [0.0, -0.6, 0.5, 0.0, 1.0, 0.4]];
    x[r * FEATURES..(r + 1) * FEATURES].iter().zip(&w[j]).map(|(a, b)| a * b).sum()
}

/// Binary labels: 1 where output 0's score is positive.
fn binary() -> Dataset {
    let x = features(1);
    let labels = (0..ROWS).map(|r| u32::from(score(&x, r, 0) > 0.0)).collect();
    Dataset::from_values(x, FEATURES, Targets::Classes { labels, classes: 2 }).unwrap()
}

/// Three labels per row, each 1 where its score is positive.
fn multi_label() -> Dataset {
    let x = features(2);
    let values = (0..ROWS * 3).map(|i| if score(&x, i / 3, i % 3) > 0.0 { 1.0 } else { 0.0 }).collect();
    Dataset::from_values(x, FEATURES, Targets::MultiHot { values, classes: 3 }).unwrap()
}

fn options(loss: Loss, outputs: usize, backend: Backend) -> TrainerOptions {
    TrainerOptions {
        spec: Network::classifier(&[FEATURES, 16, outputs], Activation::Relu),
        loss,
        optimizer: Optimizer::adam(1e-2),
        batch_size: 32,
        epochs: 15,
        validation_split: 0.2,
        seed: 3,
        backend,
        ..TrainerOptions::default()
    }
}

fn gpu() -> Backend {
    Backend::Devices(vec![fixture().gpu.clone()])
}

/// Trains `data` with `loss` on `backend`; checks that every metric of the loss is reported
/// and finite, and returns the last epoch's `val_binary_accuracy` (or `metric`) and the
/// `val_loss` curve.
fn train(loss: Loss, data: &Dataset, outputs: usize, backend: Backend, metric: &str) -> (f32, Vec<f32>) {
    let mut trainer = Trainer::new(options(loss, outputs, backend)).unwrap();
    let report = trainer.fit(data, None, |_| {}).unwrap();
    let last = report.history.epochs.last().unwrap();
    for name in loss.metric_names() {
        for name in [name.to_string(), format!("val_{name}")] {
            assert!(last.metrics.get(&name).is_some_and(f32::is_finite), "{loss:?}: {name} reported");
        }
    }
    let curve = report.history.epochs.iter().map(|e| e.metrics.get("val_loss").unwrap()).collect();
    (last.metrics.get(metric).unwrap(), curve)
}

/// The CPU and the GPU curves start from the same weights and differ only in the order of
/// f32 sums, which Adam's steps carry forward (tests/regression.rs measured a few 1e-7
/// relative for the mean squared error): 1e-5 over the first five epochs.
fn curves_agree(what: &str, cpu: &[f32], gpu: &[f32]) {
    let worst = cpu.iter().zip(gpu).take(5).map(|(c, g)| (c - g).abs() / c.abs()).fold(0.0f32, f32::max);
    println!("{what}: val_loss cpu vs gpu, largest relative difference over 5 epochs {worst:.1e}");
    for (epoch, (c, g)) in cpu.iter().zip(gpu).take(5).enumerate() {
        assert!((c - g).abs() <= 1e-5 * c.abs(), "{what} epoch {epoch}: val_loss cpu {c} gpu {g}");
    }
}

#[test]
fn binary_labels_learn_a_linear_boundary_on_the_cpu_and_the_gpu() {
    let data = binary();
    let (cpu_acc, cpu) = train(Loss::SigmoidCrossEntropy, &data, 1, Backend::Cpu, "val_binary_accuracy");
    let (gpu_acc, gpu_curve) = train(Loss::SigmoidCrossEntropy, &data, 1, gpu(), "val_binary_accuracy");
    println!("binary: val_binary_accuracy cpu {cpu_acc} gpu {gpu_acc}");
    // A linear boundary with 640 training rows: logistic regression alone passes 0.95.
    assert!(cpu_acc >= 0.93 && gpu_acc >= 0.93, "val_binary_accuracy cpu {cpu_acc} gpu {gpu_acc}");
    curves_agree("binary", &cpu, &gpu_curve);
}

#[test]
fn multi_hot_targets_learn_three_boundaries_on_the_cpu_and_the_gpu() {
    let data = multi_label();
    let (cpu_acc, cpu) = train(Loss::SigmoidCrossEntropy, &data, 3, Backend::Cpu, "val_binary_accuracy");
    let (gpu_acc, gpu_curve) = train(Loss::SigmoidCrossEntropy, &data, 3, gpu(), "val_binary_accuracy");
    println!("multi-label: val_binary_accuracy cpu {cpu_acc} gpu {gpu_acc}");
    assert!(cpu_acc >= 0.93 && gpu_acc >= 0.93, "val_binary_accuracy cpu {cpu_acc} gpu {gpu_acc}");
    curves_agree("multi-label", &cpu, &gpu_curve);
}

/// Two outputs, the first two scores of `features(seed)`; with `outliers`, every 25th row's
/// targets are thrown 20 away.
fn regression(seed: u64, outliers: bool) -> Dataset {
    let x = features(seed);
    let shift = |r: usize| if outliers && r.is_multiple_of(25) { 20.0 } else { 0.0 };
    let values = (0..ROWS * 2).map(|i| score(&x, i / 2, i % 2) + shift(i / 2)).collect();
    Dataset::from_values(x, FEATURES, Targets::Values { values, outputs: 2 }).unwrap()
}

/// Trains on rows with outliers and scores on clean rows: `(val_r2, val_loss curve)`.
fn fit_robust(loss: Loss, backend: Backend) -> (f32, Vec<f32>) {
    let opts = TrainerOptions { epochs: 30, validation_split: 0.0, ..options(loss, 2, backend) };
    let mut trainer = Trainer::new(opts).unwrap();
    let report = trainer.fit(&regression(4, true), Some(&regression(6, false)), |_| {}).unwrap();
    let last = report.history.epochs.last().unwrap();
    for name in ["loss", "mae", "rmse", "r2", "val_loss", "val_mae", "val_rmse", "val_r2"] {
        assert!(last.metrics.get(name).is_some_and(f32::is_finite), "{loss:?}: {name} reported");
    }
    let curve = report.history.epochs.iter().map(|e| e.metrics.get("val_loss").unwrap()).collect();
    (last.metrics.get("val_r2").unwrap(), curve)
}

#[test]
fn mae_and_huber_shrug_off_outliers_on_the_cpu_and_the_gpu() {
    // The mean squared error chases the outliers: its mean moves by 20 / 25 = 0.8, far
    // more than the spread of the clean targets (variance about 0.3), so its clean R² is poor.
    let (mse_r2, _) = fit_robust(Loss::MeanSquaredError, Backend::Cpu);
    for loss in [Loss::MeanAbsoluteError, Loss::huber()] {
        let (cpu_r2, cpu) = fit_robust(loss, Backend::Cpu);
        let (gpu_r2, gpu_curve) = fit_robust(loss, gpu());
        println!("{loss:?}: clean val_r2 cpu {cpu_r2} gpu {gpu_r2} (the mean squared error's {mse_r2})");
        assert!(cpu_r2 >= 0.9 && gpu_r2 >= 0.9, "{loss:?}: clean val_r2 cpu {cpu_r2} gpu {gpu_r2}");
        assert!(cpu_r2 > mse_r2 + 0.1, "{loss:?}: {cpu_r2} should beat the mean squared error's {mse_r2}");
        curves_agree(&format!("{loss:?}"), &cpu, &gpu_curve);
    }
}

/// Fits `data` with `options` expecting an error; the weights must be those before.
fn refused(options: TrainerOptions, data: &Dataset) -> Error {
    let mut trainer = Trainer::new(options).unwrap();
    let before = trainer.parameters().unwrap();
    let err = trainer.fit(data, None, |_| {}).expect_err("the targets do not suit the loss");
    assert_eq!(trainer.parameters().unwrap(), before, "weights unchanged after: {err}");
    err
}

#[test]
fn targets_the_loss_cannot_use_are_refused_before_any_step() {
    // A multi-hot value that is not 0 or 1: refused when the data set is built, by row and column.
    let mut values = vec![0.0f32; 4 * 3];
    values[7] = 2.0;
    let err =
        Dataset::from_values(vec![0.5; 4 * FEATURES], FEATURES, Targets::MultiHot { values, classes: 3 });
    match err {
        Err(Error::Data(msg)) => assert!(msg.contains("row 2, column 1") && msg.contains("2"), "{msg}"),
        other => panic!("2.0 in a multi-hot row: expected Error::Data, got {other:?}"),
    }
    for backend in [Backend::Cpu, gpu()] {
        let sigmoid = |outputs| options(Loss::SigmoidCrossEntropy, outputs, backend.clone());
        // Three multi-hot classes, two outputs.
        let err = refused(sigmoid(2), &multi_label());
        assert!(matches!(&err, Error::Shape(m) if m.contains("3 multi-hot classes")), "{err}");
        // Binary labels read by two outputs rather than one.
        let err = refused(sigmoid(2), &binary());
        assert!(matches!(&err, Error::Shape(m) if m.contains("one output")), "{err}");
        // Three classes are not binary.
        let x = features(5);
        let three = Dataset::from_values(x, FEATURES, Targets::Classes { labels: vec![2; ROWS], classes: 3 });
        let err = refused(sigmoid(1), &three.unwrap());
        assert!(matches!(&err, Error::Config(m) if m.contains("3 classes")), "{err}");
        // Regression losses on multi-hot rows, the softmax on them too.
        let err = refused(options(Loss::MeanAbsoluteError, 3, backend.clone()), &multi_label());
        assert!(matches!(&err, Error::Config(m) if m.contains("multi-hot")), "{err}");
        let err = refused(options(Loss::SoftmaxCrossEntropy, 3, backend.clone()), &multi_label());
        assert!(matches!(&err, Error::Config(_)), "{err}");
    }
    let bad_delta =
        TrainerOptions { loss: Loss::Huber { delta: 0.0 }, ..options(Loss::huber(), 2, Backend::Cpu) };
    assert!(matches!(Trainer::new(bad_delta), Err(Error::Config(m)) if m.contains("delta")), "Huber delta 0");
}

/// Two mirrored replicas against one device, for each new loss: each replica's loss and task
/// sums (right outputs; the regression sums behind mae, rmse, r2) are sums over its own rows,
/// added on the host, and the gradients differ only in the order their per-row terms are
/// added (two partial sums), so after 3 epochs of 20 steps the weights agree to 1e-4 (each
/// Adam step moves a weight by at most ~lr = 1e-2) and every metric to 1e-4 relative.
#[test]
fn mirrored_devices_train_the_new_losses_as_one_device_does() {
    let cases = [
        (Loss::SigmoidCrossEntropy, binary(), 1),
        (Loss::SigmoidCrossEntropy, multi_label(), 3),
        (Loss::MeanAbsoluteError, regression(4, true), 2),
        (Loss::huber(), regression(4, true), 2),
    ];
    for (loss, data, outputs) in cases {
        let fit = |gpus| {
            let opts = TrainerOptions { epochs: 3, ..options(loss, outputs, Backend::Devices(gpus)) };
            let mut trainer = Trainer::new(opts).unwrap();
            let report = trainer.fit(&data, None, |_| {}).unwrap();
            (report.history, trainer.parameters().unwrap())
        };
        let (h1, p1) = fit(open_gpus(1));
        let (h2, p2) = fit(open_gpus(2));
        let max = p1.iter().zip(&p2).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max <= 1e-4, "{loss:?} x{outputs}: 2 replicas drifted from one device by {max}");
        for (a, b) in h1.epochs.iter().zip(&h2.epochs) {
            for name in loss.metric_names() {
                for name in [name.to_string(), format!("val_{name}")] {
                    let (x, y) = (a.metrics.get(&name).unwrap(), b.metrics.get(&name).unwrap());
                    assert!(
                        (x - y).abs() <= 1e-4 * x.abs().max(1e-2),
                        "{loss:?} x{outputs} {name}: {x} vs {y}"
                    );
                }
            }
        }
    }
}

#[test]
fn early_stopping_maximises_val_binary_accuracy() {
    let opts = TrainerOptions {
        early_stopping: Some(
            EarlyStopping::new("val_binary_accuracy").patience(2).restore_best_weights(true),
        ),
        epochs: 60,
        ..options(Loss::SigmoidCrossEntropy, 1, Backend::Cpu)
    };
    let mut trainer = Trainer::new(opts).unwrap();
    let report = trainer.fit(&binary(), None, |_| {}).unwrap();
    let acc: Vec<f32> =
        report.history.epochs.iter().map(|e| e.metrics.get("val_binary_accuracy").unwrap()).collect();
    let best = report.best_epoch.expect("a best epoch");
    // Mode::Auto maximises: the best epoch holds the highest accuracy seen (the first of them).
    let max = acc.iter().cloned().fold(f32::MIN, f32::max);
    assert_eq!(acc[best], max, "best epoch {best} of {acc:?}");
    assert_eq!(acc.iter().position(|&a| a == max), Some(best), "the first epoch reaching it: {acc:?}");
}

#[test]
fn multi_hot_rows_survive_subset_take_and_split() {
    let data = multi_label();
    let (all, classes) = data.values().unwrap();
    assert_eq!((classes, data.classes(), data.labels().len()), (3, 3, 0), "f32 rows of 3 classes, no labels");
    let rows = |d: &Dataset| d.values().unwrap().0.to_vec();
    let picked = data.subset(&[5, 0, 5]).unwrap();
    assert_eq!(
        rows(&picked),
        [&all[15..18], &all[0..3], &all[15..18]].concat(),
        "rows in order, repeats kept"
    );
    assert!(matches!(picked.targets(), Targets::MultiHot { classes: 3, .. }), "still multi-hot");
    assert_eq!(rows(&data.take(2)), all[..6].to_vec(), "the first two rows");
    let split = wgtrain::data::validation_split(data.len(), 0.25, 7).unwrap();
    let (train, val) = (data.subset(&split.train).unwrap(), data.subset(&split.val).unwrap());
    assert_eq!(train.len() + val.len(), ROWS);
    let first_val = split.val[0] as usize;
    assert_eq!(rows(&val)[..3], all[first_val * 3..first_val * 3 + 3], "validation rows keep their targets");
    assert!(format!("{data:?}").contains("multi-hot classes: 3"), "{data:?}");
}

/// Binary labels and the same targets as a one-column multi-hot table are one problem: the
/// CPU executor reads labels as 0.0 and 1.0, so the two train to the same bits.
#[test]
fn a_one_column_multi_hot_table_trains_as_binary_labels() {
    let labels = binary();
    let column = labels.labels().iter().map(|&l| l as f32).collect();
    let hot =
        Dataset::from_values(labels.to_f32(), FEATURES, Targets::MultiHot { values: column, classes: 1 });
    let (a, curve_a) = train(Loss::SigmoidCrossEntropy, &labels, 1, Backend::Cpu, "val_binary_accuracy");
    let (b, curve_b) =
        train(Loss::SigmoidCrossEntropy, &hot.unwrap(), 1, Backend::Cpu, "val_binary_accuracy");
    assert_eq!((a, curve_a), (b, curve_b), "the same accuracy and val_loss curve");
}
