//! Learning-rate control against Keras itself: `tests/fixtures/lr/keras_lr.json` holds what
//! Keras 3's `ReduceLROnPlateau` and its `ExponentialDecay` / `CosineDecay` schedules did
//! (written by `tests/fixtures/lr/keras_lr.py`; its provenance is in the file). Every rate of
//! ReduceLROnPlateau must match exactly, as f32, and so must its `wait`, `cooldown_counter`
//! and `best`; the schedules within the rounding of Keras's float32 arithmetic (see
//! [`schedule_tolerance`]).

use std::path::PathBuf;

use serde_json::Value;
use wgtrain::{EpochMetrics, LrSchedule, Mode, Optimizer, ReduceLrOnPlateau};

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lr/keras_lr.json");
    let text = std::fs::read_to_string(&path).expect("the Keras fixture is committed");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// A metric value of the fixture: a number, "nan", or null for a metric the epoch lacks.
fn value(v: &Value) -> Option<f32> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.parse::<f32>().expect("nan")),
        v => Some(v.as_f64().expect("a number") as f32),
    }
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

/// ReduceLROnPlateau with the fixture's Keras settings (Keras's defaults where absent).
fn plateau(case: &Value) -> ReduceLrOnPlateau {
    let s = &case["settings"];
    let mut r = ReduceLrOnPlateau::new(case["monitor"].as_str().expect("monitor"));
    if let Some(v) = s.get("factor") {
        r = r.factor(f64_of(v));
    }
    if let Some(v) = s.get("patience") {
        r = r.patience(v.as_u64().expect("patience") as usize);
    }
    if let Some(v) = s.get("min_delta") {
        r = r.min_delta(f64_of(v));
    }
    if let Some(v) = s.get("cooldown") {
        r = r.cooldown(v.as_u64().expect("cooldown") as usize);
    }
    if let Some(v) = s.get("min_lr") {
        r = r.min_lr(f64_of(v));
    }
    match s.get("mode").and_then(Value::as_str) {
        Some("max") => r.mode(Mode::Max),
        Some("min") => r.mode(Mode::Min),
        _ => r,
    }
}

#[test]
fn fixture_says_where_it_came_from() {
    let f = fixture();
    let p = &f["provenance"];
    assert!(p["keras"].as_str().is_some_and(|v| v.starts_with('3')), "Keras 3 wrote it: {p}");
    assert!(p["command"].as_str().is_some_and(|c| c.contains("keras_lr.py")), "{p}");
    assert!(f["reduce_lr_on_plateau"].as_array().is_some_and(|c| c.len() >= 10));
}

#[test]
fn reduce_lr_on_plateau_matches_keras_epoch_by_epoch() {
    let f = fixture();
    let cases = f["reduce_lr_on_plateau"].as_array().expect("cases");
    let mut reductions = 0;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let monitor = case["monitor"].as_str().expect("monitor");
        let mut r = plateau(case);
        r.validate().unwrap_or_else(|e| panic!("{name}: Keras accepted these settings: {e}"));
        let mut lr = f64_of(&case["initial_lr"]) as f32;
        for (epoch, e) in case["epochs"].as_array().expect("epochs").iter().enumerate() {
            let at = format!("{name}, epoch {epoch}");
            assert_eq!(lr, f64_of(&e["logged_lr"]) as f32, "{at}: the rate Keras logged");
            let mut metrics = EpochMetrics::new();
            if let Some(v) = value(&e["value"]) {
                metrics.set(monitor, v);
            }
            if let Some(new_lr) = r.on_epoch_end(&metrics, lr) {
                assert!(new_lr < lr, "{at}: a reduction reduces ({lr} -> {new_lr})");
                lr = new_lr;
                reductions += 1;
            }
            let want = f64_of(&e["lr_after"]) as f32;
            assert_eq!(lr.to_bits(), want.to_bits(), "{at}: rate {lr} after the epoch, Keras {want}");
            assert_eq!(r.wait() as u64, e["wait"].as_u64().expect("wait"), "{at}: wait");
            let cooldown = e["cooldown_counter"].as_u64().expect("cooldown_counter");
            assert_eq!(r.cooldown_counter() as u64, cooldown, "{at}: cooldown_counter");
            let best = value(&e["best"]);
            let same = match (r.best(), best) {
                (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                (a, b) => a == b,
            };
            assert!(same, "{at}: best {:?}, Keras {best:?}", r.best());
        }
    }
    assert!(reductions >= 40, "the fixture exercises reductions: {reductions}");
}

/// Our schedule for a fixture row, with the optimizer's rate as the base rate (Keras's
/// `initial_learning_rate`, or `warmup_target` with a warmup).
fn schedule(case: &Value) -> (LrSchedule, f32) {
    let c = &case["config"];
    let steps = |k: &str| c[k].as_u64().expect("steps");
    match case["kind"].as_str() {
        Some("ExponentialDecay") => (
            LrSchedule::ExponentialDecay {
                decay_steps: steps("decay_steps"),
                decay_rate: f64_of(&c["decay_rate"]) as f32,
                staircase: c["staircase"].as_bool().expect("staircase"),
            },
            f64_of(&c["initial_learning_rate"]) as f32,
        ),
        Some("CosineDecay") => {
            let initial = f64_of(&c["initial_learning_rate"]) as f32;
            let (base, warmup_steps, warmup_from) = match c.get("warmup_target") {
                Some(t) if !t.is_null() => (f64_of(t) as f32, steps("warmup_steps"), initial),
                _ => (initial, 0, 0.0),
            };
            let alpha = f64_of(&c["alpha"]);
            (
                LrSchedule::CosineDecay {
                    decay_steps: steps("decay_steps"),
                    alpha,
                    warmup_steps,
                    warmup_from,
                },
                base,
            )
        }
        other => panic!("unknown schedule {other:?}"),
    }
}

/// How far Keras's float32 evaluation may be from ours (f64, rounded once). Keras rounds
/// each of its operations to float32 (relative error 2^-24 each): for the exponential, the
/// exponent `p = step / decay_steps` is off by up to `p * 2^-24`, which `decay_rate^p` turns
/// into a relative error of `|p ln(decay_rate)| * 2^-24`, plus a few roundings of `pow`, the
/// product and ours: `(4 + |p ln r|) * 2^-24` of the rate. For the cosine, every intermediate
/// is bounded by the peak rate (or by pi before the cosine), so about eight roundings give an
/// absolute error under `16 * 2^-24` of the peak; this bound holds near zero too, where the
/// relative error of the tail of the cosine is large.
fn schedule_tolerance(s: &LrSchedule, base: f32, step: f64, ours: f32) -> f64 {
    let eps = 2f64.powi(-24);
    match *s {
        LrSchedule::ExponentialDecay { decay_steps, decay_rate, .. } => {
            let p = step / decay_steps as f64;
            (4.0 + (p * (decay_rate as f64).ln()).abs()) * eps * ours as f64
        }
        _ => 16.0 * eps * base.max(1e-30) as f64,
    }
}

#[test]
fn schedules_match_keras_within_float32_rounding() {
    let f = fixture();
    let mut worst: f64 = 0.0;
    for case in f["schedules"].as_array().expect("schedules") {
        let name = case["name"].as_str().expect("name");
        let (s, base) = schedule(case);
        s.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        let steps = case["steps"].as_array().expect("steps");
        for (step, want) in steps.iter().zip(case["lr"].as_array().expect("lr")) {
            let keras_step = step.as_u64().expect("step");
            let want = f64_of(want);
            // Our step t (1-based) is Keras's `iterations` t - 1.
            let ours = s.lr(base, keras_step + 1);
            let tol = schedule_tolerance(&s, base, keras_step as f64, ours);
            let diff = (ours as f64 - want).abs();
            assert!(
                diff <= tol,
                "{name}, Keras step {keras_step}: ours {ours}, Keras {want} (diff {diff:e} > {tol:e})"
            );
            worst = worst.max(diff / tol.max(f64::MIN_POSITIVE));
        }
    }
    // Printed for the record (`--nocapture`): how much of the tolerance was used.
    eprintln!("schedules: worst difference {worst:.3} of its tolerance");
}

/// The scalars every executor uploads carry the schedule's rate at the step.
#[test]
fn executors_get_the_scheduled_rate_per_step() {
    let adam = Optimizer::adam(0.01);
    let s = LrSchedule::ExponentialDecay { decay_steps: 100, decay_rate: 0.5, staircase: true };
    assert_eq!(s.step_scalars(&adam, 100).lr, 0.01, "step 100 is Keras's iterations 99");
    assert_eq!(s.step_scalars(&adam, 101).lr, 0.005, "step 101 is Keras's iterations 100");
}
