//! The three shipped tables trained end to end on each executor, by the recipe of
//! `examples/tabular.rs` (the same code, `examples/support/tabular.rs`): split 80/20 by seed 0
//! into files, standardize on the training file, hold out 10 % of it for early stopping
//! (patience 10, best weights restored), a 64-64 ReLU MLP with Adam 1e-3, batch 32; then score
//! the test file, rows no run saw. Bars (issue #11): breast cancer and digits accuracy ≥ 0.95,
//! diabetes R² at most 0.03 below PyTorch's with the same network on the same split files.
//!
//! PyTorch's R² moves by ±0.02 with its seed on this split (0.431-0.470) and a seed does not
//! give two frameworks the same initial weights, so diabetes compares medians over seeds
//! 0, 1, 2; PyTorch's are in `tests/fixtures/tabular_peers/torch_diabetes.json`, with the
//! command, versions and date that produced them. Breast cancer trains with the sigmoid
//! cross-entropy on one output (binary accuracy), digits with the softmax over ten classes.
//!
//! One test per executor, each on one device for its three tables: the CPU executor, the first
//! Vulkan adapter (lavapipe on CI) and the first GL adapter (llvmpipe), picked by backend name
//! from wgpu's list as `tests/parallel.rs` does; without one the test fails under CI and skips
//! (saying so) elsewhere ([`common::require_backends`]). The file costs about 27 s of CPU time
//! with Mesa's shader cache warm and 37 s with it empty (2026-11-30, 2 cores), mostly the GPU
//! diabetes runs (about 440 epochs each executor).

mod common;

#[path = "../examples/support/tabular.rs"]
mod tabular;

use std::path::Path;

use tabular::{Outcome, Recipe, Task};
use wgtrain::Backend;

/// The split of every table, as in the fixture's command.
const SPLIT_SEED: u64 = 0;
/// Trainer seeds of the diabetes median: the fixture's.
const DIABETES_SEEDS: [u64; 3] = [0, 1, 2];

/// Splits `file` of `data/tabular` into a temporary folder and trains it on `backend` with
/// trainer seed `seed`.
fn train(file: &str, target: &str, task: Task, seed: u64, backend: Backend) -> Outcome {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tabular").join(file);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (train_file, test_file) =
        tabular::write_split(&data, SPLIT_SEED, dir.path()).expect("the split is written");
    let (train, test) = tabular::load(&train_file, &test_file, target, task).expect("the split files read");
    let recipe = Recipe { seed, ..Recipe::default() };
    let outcome = tabular::train_and_score(&train, &test, task, &recipe, backend)
        .unwrap_or_else(|e| panic!("{file} seed {seed}: {e}"));
    assert!(outcome.quality.is_finite(), "{file} seed {seed}: {} is {}", task.metric(), outcome.quality);
    outcome
}

/// Trains a classification table once as `task` and holds it to `floor`; early stopping must
/// end the run before the 200 epochs.
fn classifies(file: &str, target: &str, task: Task, floor: f32, backend: &dyn Fn() -> Backend, name: &str) {
    let out = train(file, target, task, 0, backend());
    println!("{name} {file}: {} {:.4} after {} epochs", task.metric(), out.quality, out.epochs_run);
    assert!(out.epochs_run < Recipe::default().epochs, "{name} {file}: early stopping never stopped");
    assert!(
        out.quality >= floor,
        "{name} {file}: held-out {} {} is below {floor}",
        task.metric(),
        out.quality
    );
}

/// PyTorch's median held-out R² on diabetes from the fixture, checking that it names its source.
fn torch_median_r2() -> f32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tabular_peers/torch_diabetes.json");
    let text = std::fs::read_to_string(&path).expect("the PyTorch fixture reads");
    let fixture: serde_json::Value = serde_json::from_str(&text).expect("the fixture is JSON");
    for key in ["command", "torch", "date", "split"] {
        assert!(fixture[key].is_string(), "{}: says its {key}", path.display());
    }
    let seeds: Vec<u64> = fixture["seeds"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert_eq!(seeds, DIABETES_SEEDS, "the fixture was measured with the seeds compared here");
    let mut r2: Vec<f64> = fixture["r2"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    r2.sort_by(f64::total_cmp);
    let median = fixture["median_r2"].as_f64().unwrap();
    assert_eq!(median, r2[r2.len() / 2], "the fixture's median is the median of its R² values");
    median as f32
}

/// Diabetes on every seed of [`DIABETES_SEEDS`]: the median R² within 0.03 of PyTorch's.
fn regresses_diabetes(backend: &dyn Fn() -> Backend, name: &str) {
    let bar = torch_median_r2() - 0.03;
    let mut r2: Vec<f32> = DIABETES_SEEDS
        .iter()
        .map(|&seed| train("diabetes.csv", "target", Task::Regress, seed, backend()).quality)
        .collect();
    println!("{name} diabetes: held-out R² per seed {r2:.4?}");
    r2.sort_by(f32::total_cmp);
    let median = r2[r2.len() / 2];
    assert!(median >= bar, "{name} diabetes: median held-out R² {median} is below PyTorch's - 0.03 = {bar}");
}

fn learns_the_three_tables(backend: &dyn Fn() -> Backend, name: &str) {
    classifies("breast_cancer.csv", "diagnosis", Task::Binary, 0.95, backend, name);
    classifies("digits.csv", "digit", Task::Classify, 0.95, backend, name);
    regresses_diabetes(backend, name);
}

#[test]
fn the_cpu_executor_learns_the_three_tables() {
    learns_the_three_tables(&|| Backend::Cpu, "cpu");
}

#[test]
fn vulkan_learns_the_three_tables() {
    if !common::require_backends("vulkan_learns_the_three_tables", &["vulkan"]) {
        return;
    }
    let device = tabular::backend("vulkan").expect("a Vulkan device opens");
    learns_the_three_tables(&|| device.clone(), "vulkan");
}

#[test]
fn gl_learns_the_three_tables() {
    if !common::require_backends("gl_learns_the_three_tables", &["gl"]) {
        return;
    }
    let device = tabular::backend("gl").expect("a GL device opens");
    learns_the_three_tables(&|| device.clone(), "gl");
}
