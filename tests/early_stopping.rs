//! Early stopping against Keras 3's `EarlyStopping` (keras/src/callbacks/early_stopping.py) and
//! its tests (early_stopping_test.py), plus Lightning's extra rules; and the history's CSV/JSON.
//!
//! Table-driven: each row is a sequence of monitored values, the settings, and the expected stop
//! epoch, stop reason, best epoch and restored epoch, with a message saying why. Rows named
//! after a Keras test are ports of it; rows marked "hand-derived" were worked out by stepping
//! through Keras's `on_epoch_end` by hand.

use wgtrain::{
    Decision, EarlyStopping, EpochMetrics, EpochRecord, Error, History, Mode, Monitor, StopReason,
};

/// The four metric names classification reports.
const LOSS: &str = "loss";
const ACCURACY: &str = "accuracy";
const VAL_LOSS: &str = "val_loss";
const VAL_ACCURACY: &str = "val_accuracy";
use StopReason::{DivergenceThreshold, NonFinite, Patience, StoppingThreshold};

struct Case {
    why: &'static str,
    es: EarlyStopping,
    values: Vec<Option<f32>>,
    /// Epoch of the `Stop`; `None`: the loop ran out of values (or another callback ended it).
    stop: Option<usize>,
    reason: Option<StopReason>,
    best: Option<usize>,
    restore: Option<usize>,
}

fn es(monitor: &str) -> EarlyStopping {
    EarlyStopping::new(monitor)
}

fn s(values: &[f32]) -> Vec<Option<f32>> {
    values.iter().copied().map(Some).collect()
}

/// Metrics with `value` in the monitored metric and, in the others, decoys that would change
/// the decisions if the wrong metric were read. A `None` value leaves the metric out (a `val_`
/// metric without validation).
fn metrics(monitor: &Monitor, epoch: usize, value: Option<f32>) -> EpochMetrics {
    let decoy = 100.0 + epoch as f32 * if epoch.is_multiple_of(2) { 1.0 } else { -1.0 };
    let mut m = EpochMetrics::new();
    for (name, v) in [(LOSS, decoy), (ACCURACY, -decoy), (VAL_LOSS, decoy), (VAL_ACCURACY, -decoy)] {
        if name != monitor.name() {
            m.set(name, v);
        } else if let Some(value) = value {
            m.set(name, value);
        } else {
            assert!(name.starts_with("val_"), "training metrics are always present");
        }
    }
    m
}

/// What a training loop sees: how many epochs ran, and which epoch's weights it snapshotted
/// through `wants_snapshot`.
struct Run {
    epochs_run: usize,
    snapshot: Option<usize>,
}

fn run(es: &mut EarlyStopping, values: &[Option<f32>]) -> Run {
    let (mut epochs_run, mut snapshot) = (0, None);
    for (epoch, &value) in values.iter().enumerate() {
        epochs_run += 1;
        let m = metrics(&es.monitor().clone(), epoch, value);
        let decision = es.on_epoch_end(epoch, &m);
        if es.wants_snapshot() {
            snapshot = Some(epoch);
        }
        if decision == Decision::Stop {
            break;
        }
    }
    Run { epochs_run, snapshot }
}

fn same_f32(a: Option<f32>, b: Option<f32>) -> bool {
    a.map(f32::to_bits) == b.map(f32::to_bits)
}

fn check(case: &Case) {
    let mut es = case.es.clone();
    let ran = run(&mut es, &case.values);
    let why = case.why;
    let expected_run = case.stop.map_or(case.values.len(), |e| e + 1);
    assert_eq!(ran.epochs_run, expected_run, "epochs run: {why}");
    assert_eq!(es.stopped_epoch(), case.stop, "stop epoch: {why}");
    assert_eq!(es.stop_reason(), case.reason, "stop reason: {why}");
    assert_eq!(es.best_epoch(), case.best, "best epoch: {why}");
    let best_value = case.best.and_then(|e| case.values[e]);
    assert!(same_f32(es.best(), best_value), "best {:?} vs {best_value:?}: {why}", es.best());
    assert_eq!(es.restore_epoch(), case.restore, "restore epoch: {why}");
    assert_eq!(ran.snapshot, case.restore, "snapshot the loop took via wants_snapshot: {why}");
}

const PATIENCE_LOSSES: [f32; 9] = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5];

fn keras_ports() -> Vec<Case> {
    let mut rows: Vec<Case> = (0..4)
        .map(|patience| Case {
            why: "test_early_stopping_patience: stopped_epoch == max(patience, 1) + 2",
            es: es(LOSS).patience(patience),
            values: s(&PATIENCE_LOSSES),
            stop: Some(patience.max(1) + 2),
            reason: Some(Patience),
            best: Some(2),
            restore: None,
        })
        .collect();
    rows.extend([
        Case {
            why: "test_early_stopping_final_weights_when_restoring_model_weights (1): best 0.1 at \
                  epoch 2, patience 2 stops at 4, weights of epoch 2 restored",
            es: es(VAL_LOSS).patience(2).restore_best_weights(true),
            values: s(&[0.2, 0.15, 0.1, 0.11, 0.12]),
            stop: Some(4),
            reason: Some(Patience),
            best: Some(2),
            restore: Some(2),
        },
        Case {
            why: "test_early_stopping_final_weights_when_restoring_model_weights (2): baseline 0.5 \
                  never beaten, so 5 epochs run and epoch 2 (0.7) is restored",
            es: es(VAL_LOSS).patience(5).baseline(Some(0.5)).restore_best_weights(true),
            values: s(&[0.9, 0.8, 0.7, 0.71, 0.72, 0.73]),
            stop: Some(4),
            reason: Some(Patience),
            best: Some(2),
            restore: Some(2),
        },
        Case {
            why: "test_early_stopping_final_weights_when_restoring_model_weights (3): another \
                  callback stops after epoch 3 (the values end there); epoch 2 is still restored",
            es: es(VAL_LOSS).patience(5).baseline(Some(0.5)).restore_best_weights(true),
            values: s(&[0.9, 0.8, 0.7, 0.71]),
            stop: None,
            reason: None,
            best: Some(2),
            restore: Some(2),
        },
        Case {
            why: "test_early_stopping_with_baseline: baseline 0.6 never beaten, patience 3, runs \
                  >= patience epochs; hand-derived: the first epoch counts, stop at epoch 2",
            es: es(LOSS).patience(3).baseline(Some(0.6)),
            values: s(&[0.9, 0.95, 0.95, 0.95, 0.95]),
            stop: Some(2),
            reason: Some(Patience),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "test_early_stopping_with_start_from_epoch (patience 3, start 2): runs >= 5 \
                  epochs; hand-derived on flat values: epoch 2 is the first seen, stop at 5",
            es: es(LOSS).patience(3).start_from_epoch(2),
            values: s(&[1.0; 8]),
            stop: Some(5),
            reason: Some(Patience),
            best: Some(2),
            restore: None,
        },
        Case {
            why: "test_early_stopping_with_start_from_epoch (patience 0, start 2): runs >= 2 \
                  epochs; hand-derived on flat values: stop at 3",
            es: es(LOSS).patience(0).start_from_epoch(2),
            values: s(&[1.0; 8]),
            stop: Some(3),
            reason: Some(Patience),
            best: Some(2),
            restore: None,
        },
        Case {
            why: "docstring example: monitor loss, patience 3, 'only 4 epochs are run'; \
                  hand-derived sequence that never improves after epoch 0",
            es: es(LOSS).patience(3),
            values: s(&[1.0, 1.1, 1.2, 1.3, 1.4, 1.5]),
            stop: Some(3),
            reason: Some(Patience),
            best: Some(0),
            restore: None,
        },
    ]);
    rows.extend(mode_rows());
    rows
}

/// test_early_stopping checks which comparison `mode` resolves to, fitting 2 epochs with
/// patience 0. Here the same 2 epochs with a rising value: min stops at 1, max continues.
/// (val_mse, hinge, f1_score and the `unknown` monitor's ValueError have no counterpart: the
/// `Monitor` enum names the only four metrics there are.)
fn mode_rows() -> Vec<Case> {
    let rising = |why, es: EarlyStopping, max: bool| Case {
        why,
        es: es.patience(0),
        values: s(&[0.5, 0.6]),
        stop: if max { None } else { Some(1) },
        reason: if max { None } else { Some(Patience) },
        best: Some(if max { 1 } else { 0 }),
        restore: None,
    };
    vec![
        rising("test_early_stopping: mode max is max (val_mse there)", es(VAL_LOSS).mode(Mode::Max), true),
        rising("test_early_stopping: mode min on val_loss is min", es(VAL_LOSS).mode(Mode::Min), false),
        rising("test_early_stopping: auto on loss is min", es(LOSS), false),
        rising("test_early_stopping: auto on acc is max", es(ACCURACY), true),
        rising("test_early_stopping: auto on val_accuracy is max", es(VAL_ACCURACY), true),
        rising("explicit min overrides auto on accuracy (hand-derived)", es(ACCURACY).mode(Mode::Min), false),
    ]
}

fn source_rows() -> Vec<Case> {
    vec![
        Case {
            why: "min_delta, min mode: 0.95 is not 0.1 below 1.0, 0.85 is, 0.8 is not below 0.85 \
                  by 0.1 (hand-derived)",
            es: es(VAL_LOSS).patience(2).min_delta(0.1),
            values: s(&[1.0, 0.95, 0.85, 0.8]),
            stop: None,
            reason: None,
            best: Some(2),
            restore: None,
        },
        Case {
            why: "min_delta, min mode: a change of exactly min_delta is no improvement (strict \
                  `less`; 1.0 - 0.5 is exact in binary)",
            es: es(VAL_LOSS).patience(0).min_delta(0.5),
            values: s(&[1.0, 0.5]),
            stop: Some(1),
            reason: Some(Patience),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "min_delta, max mode (Keras flips the sign): 0.55 - 0.1 is not above 0.5, \
                  0.7 - 0.1 is (hand-derived)",
            es: es(VAL_ACCURACY).patience(2).min_delta(0.1),
            values: s(&[0.5, 0.55, 0.7, 0.75]),
            stop: None,
            reason: None,
            best: Some(2),
            restore: None,
        },
        Case {
            why: "min_delta, max mode, patience 1: 0.55 is within 0.1 of 0.5, stop at 1",
            es: es(VAL_ACCURACY).patience(1).min_delta(0.1),
            values: s(&[0.5, 0.55, 0.9]),
            stop: Some(1),
            reason: Some(Patience),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "a negative min_delta acts as its absolute value (Keras: abs(min_delta))",
            es: es(VAL_LOSS).patience(0).min_delta(-0.1),
            values: s(&[1.0, 0.95]),
            stop: Some(1),
            reason: Some(Patience),
            best: Some(0),
            restore: None,
        },
        Case {
            // 0x3e19_9999 is the f32 just below 0.15. In f64, 0.14999999105930328 + 0.1 =
            // 0.24999999105..., which rounds to the f32 0.24999999 < 0.25: an improvement. Adding
            // in f32 instead (0.1f32 = 0.100000001) rounds to 0.25 exactly: none. Derived with
            // Python's float and struct.pack('f').
            why: "min_delta is subtracted in double precision like Python, then compared as \
                  float32 like keras.ops.less (derived with Python floats)",
            es: es(VAL_LOSS).patience(0).min_delta(0.1),
            values: s(&[0.25, f32::from_bits(0x3e19_9999)]),
            stop: None,
            reason: None,
            best: Some(1),
            restore: None,
        },
        Case {
            why: "patience 0: an equal value is no improvement and stops at once",
            es: es(VAL_LOSS),
            values: s(&[0.3, 0.3, 0.2]),
            stop: Some(1),
            reason: Some(Patience),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "baseline beaten later: wait resets only at 0.55 < 0.6, then 3 epochs without \
                  improvement (hand-derived)",
            es: es(VAL_LOSS).patience(3).baseline(Some(0.6)),
            values: s(&[0.9, 0.8, 0.55, 0.56, 0.57, 0.58, 0.59]),
            stop: Some(5),
            reason: Some(Patience),
            best: Some(2),
            restore: None,
        },
        Case {
            why: "baseline never beaten but every epoch improves: Keras returns on an improvement \
                  before the patience test, so it never stops (hand-derived)",
            es: es(VAL_LOSS).patience(2).baseline(Some(0.6)),
            values: s(&[0.9, 0.85, 0.8, 0.75, 0.7, 0.65]),
            stop: None,
            reason: None,
            best: Some(5),
            restore: None,
        },
        Case {
            why: "baseline is compared with min_delta too: 0.55 + 0.1 is not below 0.6, so wait \
                  keeps counting and 0.56 stops (hand-derived)",
            es: es(VAL_LOSS).patience(2).baseline(Some(0.6)).min_delta(0.1),
            values: s(&[0.9, 0.55, 0.56]),
            stop: Some(2),
            reason: Some(Patience),
            best: Some(1),
            restore: None,
        },
        Case {
            why: "start_from_epoch: better values before the start are ignored, epoch 2 is the \
                  first best and the one restored",
            es: es(VAL_LOSS).start_from_epoch(2).restore_best_weights(true),
            values: s(&[0.1, 0.1, 0.5, 0.6]),
            stop: Some(3),
            reason: Some(Patience),
            best: Some(2),
            restore: Some(2),
        },
        Case {
            why: "missing val_loss: skipped, not counted against patience; 0.6 at epoch 4 is the \
                  first non-improvement (hand-derived)",
            es: es(VAL_LOSS).patience(1),
            values: vec![None, None, Some(0.5), None, Some(0.6), None, Some(0.7)],
            stop: Some(4),
            reason: Some(Patience),
            best: Some(2),
            restore: None,
        },
        Case {
            why: "missing val_accuracy takes no snapshot; the first value seen does",
            es: es(VAL_ACCURACY).patience(3).restore_best_weights(true),
            values: vec![None, Some(0.5), None, Some(0.4)],
            stop: None,
            reason: None,
            best: Some(1),
            restore: Some(1),
        },
        Case {
            why: "restore when the loop ends without a stop: best epoch 1 is restored",
            es: es(VAL_LOSS).patience(5).restore_best_weights(true),
            values: s(&[0.3, 0.2, 0.25, 0.26]),
            stop: None,
            reason: None,
            best: Some(1),
            restore: Some(1),
        },
        Case {
            why: "restore_best_weights off: a best epoch but nothing to restore",
            es: es(VAL_LOSS).patience(1),
            values: s(&[0.3, 0.2, 0.25]),
            stop: Some(2),
            reason: Some(Patience),
            best: Some(1),
            restore: None,
        },
    ]
}

fn lightning_rows() -> Vec<Case> {
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    vec![
        Case {
            why: "check_finite: NaN stops at once; the last finite best stays the one restored",
            es: es(VAL_LOSS).patience(5).restore_best_weights(true),
            values: s(&[0.5, 0.4, nan, 0.3]),
            stop: Some(2),
            reason: Some(NonFinite),
            best: Some(1),
            restore: Some(1),
        },
        Case {
            why: "check_finite: +inf stops; Lightning's check has no epoch > 0 guard",
            es: es(VAL_LOSS).patience(5),
            values: s(&[inf, 0.4]),
            stop: Some(0),
            reason: Some(NonFinite),
            best: None,
            restore: None,
        },
        Case {
            why: "check_finite: -inf on accuracy stops too, with no snapshot taken",
            es: es(VAL_ACCURACY).patience(5).restore_best_weights(true),
            values: s(&[-inf]),
            stop: Some(0),
            reason: Some(NonFinite),
            best: None,
            restore: None,
        },
        Case {
            why: "check_finite only looks from start_from_epoch on: the early NaNs are ignored",
            es: es(VAL_LOSS).patience(5).start_from_epoch(2),
            values: s(&[nan, nan, 0.5, 0.6]),
            stop: None,
            reason: None,
            best: Some(2),
            restore: None,
        },
        Case {
            why: "check_finite off, pure Keras 3: the first value is an improvement over None even \
                  when NaN, and nothing beats NaN after (hand-derived)",
            es: es(VAL_LOSS).patience(1).check_finite(false).restore_best_weights(true),
            values: s(&[nan, 0.5, 0.4]),
            stop: Some(1),
            reason: Some(Patience),
            best: Some(0),
            restore: Some(0),
        },
        Case {
            why: "check_finite off: +inf is no improvement in min mode, 0.4 is (hand-derived)",
            es: es(VAL_LOSS).patience(2).check_finite(false),
            values: s(&[0.5, inf, 0.4]),
            stop: None,
            reason: None,
            best: Some(2),
            restore: None,
        },
        Case {
            why: "stopping_threshold, min: strictly below (Lightning's torch.lt), so 0.2 goes on \
                  and 0.1 stops; Keras's bookkeeping ran first, so 0.1 is best and restored",
            es: es(VAL_LOSS).patience(5).stopping_threshold(Some(0.2)).restore_best_weights(true),
            values: s(&[0.5, 0.3, 0.2, 0.1, 0.05]),
            stop: Some(3),
            reason: Some(StoppingThreshold),
            best: Some(3),
            restore: Some(3),
        },
        Case {
            why: "stopping_threshold, max (auto for accuracy): 0.9 is not above 0.9, 0.95 stops",
            es: es(VAL_ACCURACY).patience(5).stopping_threshold(Some(0.9)),
            values: s(&[0.5, 0.9, 0.95, 0.97]),
            stop: Some(2),
            reason: Some(StoppingThreshold),
            best: Some(2),
            restore: None,
        },
        Case {
            why: "stopping_threshold stops at epoch 0 (no epoch > 0 guard in Lightning)",
            es: es(VAL_LOSS).patience(5).stopping_threshold(Some(0.5)),
            values: s(&[0.4, 0.3]),
            stop: Some(0),
            reason: Some(StoppingThreshold),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "stopping_threshold ignored before start_from_epoch",
            es: es(VAL_LOSS).patience(5).stopping_threshold(Some(0.2)).start_from_epoch(2),
            values: s(&[0.1, 0.1, 0.5, 0.1]),
            stop: Some(3),
            reason: Some(StoppingThreshold),
            best: Some(3),
            restore: None,
        },
        Case {
            why: "divergence_threshold, min: strictly above, so 2.0 goes on and 2.5 stops",
            es: es(VAL_LOSS).patience(10).divergence_threshold(Some(2.0)).restore_best_weights(true),
            values: s(&[1.0, 2.0, 2.5, 0.5]),
            stop: Some(2),
            reason: Some(DivergenceThreshold),
            best: Some(0),
            restore: Some(0),
        },
        Case {
            why: "divergence_threshold, max: 0.1 is not below 0.1, 0.05 stops",
            es: es(VAL_ACCURACY).patience(10).divergence_threshold(Some(0.1)),
            values: s(&[0.5, 0.1, 0.05]),
            stop: Some(2),
            reason: Some(DivergenceThreshold),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "thresholds come before patience as the reason (Lightning's order)",
            es: es(VAL_LOSS).patience(0).divergence_threshold(Some(1.1)),
            values: s(&[1.0, 1.2]),
            stop: Some(1),
            reason: Some(DivergenceThreshold),
            best: Some(0),
            restore: None,
        },
        Case {
            why: "check_finite comes before the thresholds (Lightning's order)",
            es: es(VAL_LOSS).stopping_threshold(Some(0.5)).divergence_threshold(Some(2.0)),
            values: s(&[nan]),
            stop: Some(0),
            reason: Some(NonFinite),
            best: None,
            restore: None,
        },
    ]
}

#[test]
fn keras_test_ports() {
    keras_ports().iter().for_each(check);
}

#[test]
fn rules_read_from_the_keras_source() {
    source_rows().iter().for_each(check);
}

#[test]
fn lightning_rules() {
    lightning_rows().iter().for_each(check);
}

#[test]
fn auto_mode_resolves_like_keras() {
    assert_eq!(es(LOSS).direction(), Mode::Min, "loss is minimised");
    assert_eq!(es(VAL_LOSS).direction(), Mode::Min, "val_ is stripped: val_loss is minimised");
    assert_eq!(es(ACCURACY).direction(), Mode::Max, "accuracy goes up");
    assert_eq!(es(VAL_ACCURACY).direction(), Mode::Max, "val_accuracy goes up");
    assert_eq!(es(ACCURACY).mode(Mode::Min).direction(), Mode::Min, "explicit mode wins");
    let named = [Monitor::loss(), Monitor::accuracy(), Monitor::val_loss(), Monitor::val_accuracy()];
    let names: Vec<&str> = named.iter().map(Monitor::name).collect();
    assert_eq!(names, ["loss", "accuracy", "val_loss", "val_accuracy"], "Keras log keys");
    let table = [
        ("mae", Mode::Min, "errors go down"),
        ("val_mae", Mode::Min, "val_ is stripped"),
        ("rmse", Mode::Min, "errors go down"),
        ("r2", Mode::Max, "R² goes up"),
        ("val_r2", Mode::Max, "val_r2 goes up"),
        ("binary_accuracy", Mode::Max, "binary accuracy goes up"),
        ("val_binary_accuracy", Mode::Max, "and its val_ twin"),
        ("acc", Mode::Max, "Keras 2's short name"),
        ("val_loss_accuracy_like", Mode::Min, "only exact names are maximised"),
    ];
    for (name, mode, why) in table {
        assert_eq!(es(name).direction(), mode, "{name}: {why}");
    }
}

#[test]
fn reuse_after_reset_matches_a_fresh_instance() {
    // test_early_stopping_reuse and test_early_stopping_reuse_across_models (keras issue 20256):
    // a reused callback must not compare a new run with the old run's best.
    let first = s(&[0.5, 0.1, 0.2, 0.3]);
    let second = s(&[0.9, 0.8, 0.7, 0.6, 0.5]);
    let mut stopper = es(VAL_LOSS).patience(2);
    assert_eq!(run(&mut stopper, &first).epochs_run, 4, "first run stops at epoch 3");

    let mut stale = stopper.clone();
    let stale_run = run(&mut stale, &second);
    // Hand-derived: wait is 2 after the first run, 3 at epoch 0 (no stop: epoch > 0 guard),
    // 4 at epoch 1 against the stale best 0.1: stop. The only way epoch 0 meets the guard.
    assert_eq!(stale_run.epochs_run, 2, "without reset the stale best stops the second run");

    stopper.reset();
    let reused = run(&mut stopper, &second);
    let mut fresh = es(VAL_LOSS).patience(2);
    let fresh_run = run(&mut fresh, &second);
    assert_eq!(reused.epochs_run, 5, "after reset the improving run is not stopped");
    assert_eq!(fresh_run.epochs_run, reused.epochs_run, "reset instance runs like a fresh one");
    assert_eq!(stopper, fresh, "reset leaves the state of a fresh instance after the same run");
}

#[test]
fn serde_round_trip_mid_sequence_decides_the_same() {
    let nan = f32::NAN;
    let setups = [
        (
            es(VAL_LOSS).patience(2).baseline(Some(0.6)).restore_best_weights(true),
            s(&[0.9, 0.8, 0.55, 0.56, 0.57, 0.58, 0.5]),
        ),
        // check_finite off keeps a NaN best, an infinite baseline must survive JSON too.
        (es(LOSS).patience(1).check_finite(false).baseline(Some(f32::INFINITY)), s(&[nan, 0.5, 0.4])),
        (
            es(VAL_ACCURACY).patience(3).min_delta(0.01).start_from_epoch(1).stopping_threshold(Some(0.9)),
            vec![Some(0.1), None, Some(0.5), Some(0.505), Some(0.6), Some(0.95)],
        ),
    ];
    for (setup, values) in setups {
        for split in 0..values.len() {
            let mut original = setup.clone();
            run(&mut original, &values[..split]);
            let json = serde_json::to_string(&original).expect("serialize");
            let mut restored: EarlyStopping = serde_json::from_str(&json).expect("deserialize");
            let again = serde_json::to_string(&restored).expect("serialize again");
            assert_eq!(json, again, "JSON round trip is lossless at split {split}");
            for (epoch, &value) in values.iter().enumerate().skip(split) {
                let m = metrics(&original.monitor().clone(), epoch, value);
                let (a, b) = (original.on_epoch_end(epoch, &m), restored.on_epoch_end(epoch, &m));
                let at = format!("split {split}, epoch {epoch}, {json}");
                assert_eq!(a, b, "decision at {at}");
                assert_eq!(original.wants_snapshot(), restored.wants_snapshot(), "snapshot at {at}");
                assert_eq!(original.stopped_epoch(), restored.stopped_epoch(), "stop at {at}");
                assert_eq!(original.stop_reason(), restored.stop_reason(), "reason at {at}");
                assert_eq!(original.best_epoch(), restored.best_epoch(), "best epoch at {at}");
                assert!(same_f32(original.best(), restored.best()), "best at {at}");
                assert_eq!(original.restore_epoch(), restored.restore_epoch(), "restore at {at}");
                assert_eq!(original.wait(), restored.wait(), "wait at {at}");
            }
        }
    }
}

#[test]
fn default_is_keras_defaults_with_check_finite() {
    let spelled_out = EarlyStopping::new(VAL_LOSS)
        .patience(0)
        .min_delta(0.0)
        .mode(Mode::Auto)
        .baseline(None)
        .restore_best_weights(false)
        .start_from_epoch(0)
        .check_finite(true)
        .stopping_threshold(None)
        .divergence_threshold(None);
    assert_eq!(EarlyStopping::default(), spelled_out, "Keras defaults + check_finite");
    assert_eq!(EarlyStopping::default().monitor().name(), VAL_LOSS, "Keras monitors val_loss");
    let (stopped, untouched) = (es(VAL_LOSS).check_finite(false), EarlyStopping::default());
    assert_ne!(stopped, untouched, "check_finite is part of the settings compared");
}

#[test]
fn validate_rejects_nan_settings() {
    assert!(EarlyStopping::default().validate().is_ok(), "defaults are valid");
    let infinite = es(VAL_LOSS).baseline(Some(f32::INFINITY)).min_delta(f64::INFINITY);
    assert!(infinite.validate().is_ok(), "infinities are odd but well defined");
    let bad = [
        ("min_delta", es(VAL_LOSS).min_delta(f64::NAN)),
        ("baseline", es(VAL_LOSS).baseline(Some(f32::NAN))),
        ("stopping_threshold", es(VAL_LOSS).stopping_threshold(Some(f32::NAN))),
        ("divergence_threshold", es(VAL_LOSS).divergence_threshold(Some(f32::NAN))),
    ];
    for (name, setting) in bad {
        match setting.validate() {
            Err(Error::Config(msg)) => assert!(msg.contains(name), "{name} named in: {msg}"),
            other => panic!("NaN {name} gave {other:?}, expected Error::Config"),
        }
    }
}

#[test]
fn stop_reasons_read_well() {
    let all = [Patience, NonFinite, StoppingThreshold, DivergenceThreshold];
    let texts: Vec<String> = all.iter().map(|r| r.to_string()).collect();
    for (i, text) in texts.iter().enumerate() {
        assert!(text.starts_with("the monitored metric"), "{text}");
        assert!(!texts[..i].contains(text), "each reason has its own phrase: {text}");
    }
    let mut patient = es(VAL_LOSS).patience(2);
    assert_eq!(patient.stop_message(), None, "no message before a stop");
    run(&mut patient, &s(&[0.2, 0.15, 0.1, 0.11, 0.12]));
    assert_eq!(
        patient.stop_message().as_deref(),
        Some("epoch 4: val_loss did not improve by more than 0 for 2 epochs; best 0.1 at epoch 2")
    );
    let mut finite = es(LOSS);
    run(&mut finite, &s(&[0.5, f32::NAN]));
    assert_eq!(
        finite.stop_message().as_deref(),
        Some("epoch 1: loss = NaN is not finite; best 0.5 at epoch 0")
    );
}

#[test]
fn wants_snapshot_only_on_the_deciding_call() {
    let mut stopper = es(VAL_LOSS).patience(5).restore_best_weights(true);
    let expected = [(0.5, true), (0.6, false), (0.4, true), (0.4, false)];
    for (epoch, (value, wanted)) in expected.into_iter().enumerate() {
        stopper.on_epoch_end(epoch, &metrics(&Monitor::val_loss(), epoch, Some(value)));
        assert_eq!(stopper.wants_snapshot(), wanted, "epoch {epoch} value {value}");
    }
    stopper.on_epoch_end(4, &metrics(&Monitor::val_loss(), 4, None));
    assert!(!stopper.wants_snapshot(), "a missing value clears the request of the last call");
    // Keras's on_train_end restores only while restore_best_weights is set.
    let switched_off = stopper.restore_best_weights(false);
    assert_eq!(switched_off.restore_epoch(), None, "restore turned off after the snapshot");
    let mut off = es(VAL_LOSS).patience(5);
    off.on_epoch_end(0, &metrics(&Monitor::val_loss(), 0, Some(0.5)));
    assert!(!off.wants_snapshot(), "no snapshots without restore_best_weights");
    // Keras snapshots whenever best_weights is None, improvement or not: turning restore on
    // mid-run snapshots the next epoch seen even though 0.6 does not improve on 0.5.
    let mut on = off.restore_best_weights(true);
    on.on_epoch_end(1, &metrics(&Monitor::val_loss(), 1, Some(0.6)));
    assert!(on.wants_snapshot(), "first epoch seen with restore on");
    assert_eq!((on.restore_epoch(), on.best_epoch()), (Some(1), Some(0)), "snapshot is not best");
}

#[test]
fn epoch_metrics_serde_keeps_nan_order_and_absence() {
    let m =
        EpochMetrics::new().with("loss", f32::NAN).with("accuracy", 0.25).with("val_loss", f32::NEG_INFINITY);
    let json = serde_json::to_string(&m).expect("serialize");
    assert_eq!(json, r#"{"loss":"NaN","accuracy":0.25,"val_loss":"-inf"}"#, "set order, NaN as text");
    let back: EpochMetrics = serde_json::from_str(&json).expect("deserialize");
    assert!(back.get("loss").is_some_and(f32::is_nan), "{back:?}");
    assert_eq!((back.get("accuracy"), back.get("val_loss")), (Some(0.25), Some(f32::NEG_INFINITY)));
    assert_eq!(back.get("val_accuracy"), None, "a metric never set is absent");
    let names: Vec<&str> = back.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["loss", "accuracy", "val_loss"], "order survives the round trip");
    assert!(serde_json::from_str::<EpochMetrics>(r#"{"loss":"x"}"#).is_err(), "a string that is no float");
    assert!(serde_json::from_str::<EpochMetrics>(r#"{"loss":1,"loss":2}"#).is_err(), "a name twice");
    let mut set = EpochMetrics::new().with("loss", 1.0);
    set.set("loss", 2.0);
    assert_eq!((set.len(), set.get("loss")), (1, Some(2.0)), "set replaces in place");
}

fn sample_history() -> History {
    let mut history = History::default();
    let first = EpochMetrics::new().with("loss", 0.5).with("accuracy", 0.75);
    history.push(EpochRecord::new(0, &first, 2.0, 1000));
    history.push(EpochRecord {
        epoch: 1,
        metrics: EpochMetrics::new()
            .with("loss", f32::NAN)
            .with("accuracy", 0.8)
            .with("val_loss", 0.25)
            .with("val_accuracy", 0.875),
        seconds: 0.5,
        samples_per_second: 2000.0,
    });
    history
}

#[test]
fn history_csv() {
    let history = sample_history();
    assert_eq!(history.epochs[0].samples_per_second, 500.0, "1000 samples in 2 s");
    assert_eq!(EpochRecord::new(0, &EpochMetrics::default(), 0.0, 10).samples_per_second, 0.0);
    assert_eq!(history.last().map(|r| r.epoch), Some(1), "last is the latest epoch");
    assert_eq!(
        history.to_csv(),
        "epoch,loss,accuracy,val_loss,val_accuracy,seconds,samples_per_second\n\
         0,0.5,0.75,,,2,500\n\
         1,NaN,0.8,0.25,0.875,0.5,2000\n"
    );
    assert_eq!(History::default().to_csv().lines().count(), 1, "empty history: header only");
}

#[test]
fn history_json_and_files() {
    let history = sample_history();
    let json = history.to_json();
    assert!(json.contains(r#""loss": "NaN""#), "NaN stays readable: {json}");
    assert!(!json.contains("null"), "an unmeasured metric is absent, not null: {json}");
    let back: History = serde_json::from_str(&json).expect("read back");
    assert_eq!(back.to_json(), json, "lossless JSON round trip");
    assert_eq!(back.epochs[1].get("val_accuracy"), Some(0.875));

    let dir = tempfile::tempdir().expect("temp dir");
    let (csv_path, json_path) = (dir.path().join("h.csv"), dir.path().join("h.json"));
    history.write_csv(&csv_path).expect("write csv");
    history.write_json(&json_path).expect("write json");
    assert_eq!(std::fs::read_to_string(&csv_path).expect("csv"), history.to_csv());
    let read = History::read_json(&json_path).expect("read json");
    assert_eq!(read.to_json(), json, "file round trip");

    let missing = dir.path().join("no/such/dir/h.csv");
    match history.write_csv(&missing) {
        Err(Error::File { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Error::File, got {other:?}"),
    }
    std::fs::write(&csv_path, "not json").expect("overwrite");
    assert!(matches!(History::read_json(&csv_path), Err(Error::File { .. })), "garbage JSON");
}
