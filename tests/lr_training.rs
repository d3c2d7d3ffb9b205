//! Learning-rate control through the public Trainer: ReduceLROnPlateau reduces on a plateau on
//! the CPU, on the test adapter (lavapipe on CI) and on two mirrored replicas alike; a
//! reduction and a step schedule reach the executor (the same bits as training epoch by epoch
//! at those rates); a resumed
//! run continues with the reduced rate and its progress exactly; bad settings are errors.
//! The rules themselves are checked against Keras in `tests/lr_keras.rs`.

mod common;

use wgtrain::data::Dataset;
use wgtrain::{
    Activation, Backend, Error, LrSchedule, Network, Optimizer, ReduceLrOnPlateau, TrainEvent, Trainer,
    TrainerOptions,
};

const ROWS: usize = 320;
const BATCH: usize = 32;
const STEPS_PER_EPOCH: u64 = (ROWS / BATCH) as u64;
const EPOCHS: usize = 4;
const LR: f32 = 1e-3;

/// A deterministic pseudo-random u8 dataset whose label is the quarter of its first pixel.
fn synthetic() -> Dataset {
    let (features, classes) = (20, 4);
    let mut s = 12345u64;
    let mut px = Vec::with_capacity(ROWS * features);
    for _ in 0..ROWS * features {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        px.push((s >> 56) as u8);
    }
    let labels = (0..ROWS).map(|r| (px[r * features] as usize * classes / 256) as u8).collect();
    Dataset::new(px, labels, features, classes).expect("valid synthetic data")
}

/// `min_delta` far above any change of the loss: after the first epoch (which always
/// improves on no best) no epoch improves, so with patience 1 every later epoch halves the
/// rate, whatever the backend's rounding.
fn plateau() -> ReduceLrOnPlateau {
    ReduceLrOnPlateau::new("loss").patience(1).factor(0.5).min_delta(10.0)
}

fn options(backend: Backend) -> TrainerOptions {
    TrainerOptions {
        spec: Network::classifier(&[20, 16, 4], Activation::Relu),
        optimizer: Optimizer::adam(LR),
        batch_size: BATCH,
        epochs: EPOCHS,
        validation_split: 0.0,
        seed: 5,
        backend,
        ..TrainerOptions::default()
    }
}

struct Run {
    params: Vec<f32>,
    replicas: Vec<Vec<f32>>,
    /// The history's `learning_rate` column.
    logged: Vec<Option<f32>>,
    /// (epoch, old, new) of every LearningRateReduced event.
    reductions: Vec<(usize, f32, f32)>,
    final_lr: f32,
}

fn run(options: TrainerOptions) -> Run {
    let mut t = Trainer::new(options).expect("trainer");
    let mut reductions = Vec::new();
    let report = t
        .fit(&synthetic(), None, |e| {
            if let TrainEvent::LearningRateReduced { epoch, old_lr, new_lr, monitor, .. } = e {
                assert_eq!(monitor, "loss");
                reductions.push((*epoch, *old_lr, *new_lr));
            }
        })
        .expect("fit");
    Run {
        params: t.parameters().expect("parameters"),
        replicas: t.replica_parameters().expect("replicas"),
        logged: report.history.epochs.iter().map(|r| r.get("learning_rate")).collect(),
        reductions,
        final_lr: t.learning_rate(),
    }
}

/// Trains epoch by epoch at the given base rates, setting each through a checkpoint state
/// (`TrainingState::learning_rate`, then `Trainer::from_state`): the rate reaches the
/// executor by another path than a reduction does.
fn manual(backend: impl Fn() -> Backend, rates: &[f32]) -> Vec<f32> {
    let mut state: Option<wgtrain::TrainingState> = None;
    for (epoch, &rate) in rates.iter().enumerate() {
        let options = TrainerOptions { epochs: epoch + 1, ..options(backend()) };
        let mut t = match state.take() {
            None => Trainer::new(options).expect("trainer"),
            Some(mut s) => {
                s.learning_rate = rate;
                Trainer::from_state(options, s).expect("from state")
            }
        };
        assert_eq!(t.learning_rate(), rate);
        t.fit(&synthetic(), None, |_| {}).expect("fit");
        state = Some(t.state().expect("state"));
    }
    state.expect("an epoch").params
}

/// What every backend must show: epoch 0 improves on no best, epochs 1-3 do not, so each
/// halves the rate (events at 1, 2, 3; the history logs the rate each epoch trained with, as
/// Keras does), with the same bits as training epoch by epoch at those rates; a step schedule
/// halving every epoch gives the same bits as those rates too.
fn check_plateau_run(backend: impl Fn() -> Backend, what: &str) -> Vec<f32> {
    let reduced = run(TrainerOptions { reduce_lr_on_plateau: Some(plateau()), ..options(backend()) });
    let rates = [LR, LR, LR / 2.0, LR / 4.0];
    assert_eq!(reduced.logged, rates.map(Some), "{what}: learning_rate column");
    let events = vec![(1, LR, LR / 2.0), (2, LR / 2.0, LR / 4.0), (3, LR / 4.0, LR / 8.0)];
    assert_eq!(reduced.reductions, events, "{what}: LearningRateReduced events");
    assert_eq!(reduced.final_lr, LR / 8.0, "{what}: epoch 3 reduced too");
    assert_eq!(bits(&reduced.params), bits(&manual(&backend, &rates)), "{what}: reduction = manual rates");
    for (r, replica) in reduced.replicas.iter().enumerate() {
        assert_eq!(bits(replica), bits(&reduced.params), "{what}: replica {r} drifted");
    }

    let step = LrSchedule::StepDecay { step_size: STEPS_PER_EPOCH, gamma: 0.5 };
    let scheduled = run(TrainerOptions { lr_schedule: step, ..options(backend()) });
    let next = [LR / 2.0, LR / 4.0, LR / 8.0, LR / 16.0];
    assert_eq!(scheduled.logged, next.map(Some), "{what}: a schedule logs the next step's rate");
    let halving = manual(&backend, &[LR, LR / 2.0, LR / 4.0, LR / 8.0]);
    assert_eq!(bits(&scheduled.params), bits(&halving), "{what}: step schedule = manual rates");

    let constant = run(options(backend()));
    assert!(constant.logged.iter().all(Option::is_none), "{what}: no column without LR control");
    assert_ne!(bits(&reduced.params), bits(&constant.params), "{what}: the reduction changed training");
    reduced.params
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The same plateau on the CPU, on one device and on two mirrored replicas: the same
/// reductions at the same epochs, and weights within 1e-4 of the CPU's (each Adam step moves a
/// weight by at most ~lr = 1e-3; the backends differ only in rounding, as in
/// `tests/training.rs`).
#[test]
fn plateau_reduces_alike_on_cpu_device_and_mirrored_replicas() {
    let cpu = check_plateau_run(|| Backend::Cpu, "cpu");
    let gpus = common::open_gpus(2);
    let one = check_plateau_run(|| Backend::Devices(vec![gpus[0].clone()]), "one device");
    let two = check_plateau_run(|| Backend::Devices(gpus.clone()), "two replicas");
    for (what, params) in [("one device", &one), ("two replicas", &two)] {
        let worst = params.iter().zip(&cpu).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        eprintln!("{what}: max |w - cpu| = {worst:e}");
        assert!(worst <= 1e-4, "{what} drifted from the CPU by {worst}");
    }
}

/// Two epochs, a checkpoint, a new trainer resumed from it for two more: the same bits and
/// the same rates as four epochs in one go (the rate and ReduceLROnPlateau's progress are in
/// the checkpoint; without them the resumed run would train at the optimizer's rate).
#[test]
fn resumed_run_keeps_the_reduced_rate_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_checkpoint = |epochs| TrainerOptions {
        reduce_lr_on_plateau: Some(plateau().cooldown(2)),
        checkpoint_dir: Some(dir.path().to_path_buf()),
        epochs,
        ..options(Backend::Cpu)
    };
    let mut first = Trainer::new(with_checkpoint(2)).expect("trainer");
    first.fit(&synthetic(), None, |_| {}).expect("first half");
    assert_eq!(first.learning_rate(), LR / 2.0, "reduced after epoch 1");
    let mut resumed = Trainer::resume(with_checkpoint(EPOCHS)).expect("resume");
    assert_eq!(resumed.epochs_completed(), 2);
    assert_eq!(resumed.learning_rate(), LR / 2.0, "the reduced rate came back");
    assert_eq!(resumed.reduce_lr_on_plateau().map(|r| r.cooldown_counter()), Some(2));
    let report = resumed.fit(&synthetic(), None, |_| {}).expect("second half");

    let whole =
        run(TrainerOptions { reduce_lr_on_plateau: Some(plateau().cooldown(2)), ..options(Backend::Cpu) });
    let logged: Vec<Option<f32>> = report.history.epochs.iter().map(|r| r.get("learning_rate")).collect();
    assert_eq!(logged, whole.logged);
    let header = report.history.to_csv().lines().next().unwrap_or_default().to_string();
    assert_eq!(
        header, "epoch,loss,accuracy,learning_rate,seconds,samples_per_second",
        "Keras logs it as a metric"
    );
    // Keras's cooldown 2: the epoch after a reduction counts the cooldown down to 1 and is
    // skipped, the next counts it to 0 and counts against patience again.
    assert_eq!(logged, [LR, LR, LR / 2.0, LR / 2.0].map(Some), "cooldown 2 skips epoch 2");
    assert_eq!(resumed.learning_rate(), LR / 4.0, "epoch 3 reduced again");
    assert_eq!(bits(&resumed.parameters().expect("parameters")), bits(&whole.params));
}

#[test]
fn bad_lr_settings_are_errors_naming_the_field() {
    let expo = LrSchedule::ExponentialDecay { decay_steps: 10, decay_rate: 0.9, staircase: false };
    // (options, words the error must hold)
    let rows = [
        (
            TrainerOptions {
                lr_schedule: expo,
                reduce_lr_on_plateau: Some(plateau()),
                ..options(Backend::Cpu)
            },
            "reduce_lr_on_plateau cannot reduce a learning rate that lr_schedule",
        ),
        (
            TrainerOptions { reduce_lr_on_plateau: Some(plateau().factor(2.0)), ..options(Backend::Cpu) },
            "reduce_lr_on_plateau: factor must be in (0, 1)",
        ),
        (
            TrainerOptions {
                lr_schedule: LrSchedule::StepDecay { step_size: 0, gamma: 0.5 },
                ..options(Backend::Cpu)
            },
            "lr_schedule: StepDecay step_size must be at least 1",
        ),
    ];
    for (options, words) in rows {
        match Trainer::new(options) {
            Err(Error::Config(msg)) => assert!(msg.contains(words), "`{msg}` lacks `{words}`"),
            Err(other) => panic!("expected a Config error with `{words}`, got {other}"),
            Ok(_) => panic!("accepted: expected `{words}`"),
        }
    }
    let misspelt = TrainerOptions {
        reduce_lr_on_plateau: Some(ReduceLrOnPlateau::new("vall_loss")),
        ..options(Backend::Cpu)
    };
    let err =
        Trainer::new(misspelt).expect("valid options").fit(&synthetic(), None, |_| {}).expect_err("misspelt");
    assert!(err.to_string().contains("reduce_lr_on_plateau monitors `vall_loss`"), "{err}");
}
