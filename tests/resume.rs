//! Crash safety: a training process killed with SIGKILL mid-epoch, then resumed from its last
//! checkpoint, ends with exactly the same weights as a run that was never interrupted, on the
//! CPU reference and on the test adapter (see `common::test_adapter`). The run reduces its
//! learning rate on a plateau after epochs 1, 2 and 3, so the resumed run must also bring back
//! the reduced rate and ReduceLROnPlateau's progress.
//!
//! The child is this test binary itself, running the ignored test `child_trainer` with its
//! instructions in environment variables (plumbing of this test harness only).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wgtrain::data::{default_mnist_dir, load_mnist};
use wgtrain::{Backend, EarlyStopping, Monitor, ReduceLrOnPlateau, TrainEvent, Trainer, TrainerOptions};

const EPOCHS: usize = 4;

fn options(backend: &str, checkpoint: Option<PathBuf>) -> TrainerOptions {
    let backend = match backend {
        "cpu" => Backend::Cpu,
        _ => Backend::Devices(common::open_gpus(1)),
    };
    TrainerOptions {
        epochs: EPOCHS,
        batch_size: 32,
        seed: 11,
        early_stopping: Some(EarlyStopping::new(Monitor::val_loss()).patience(3).restore_best_weights(true)),
        // No epoch after the first improves by 10: each halves the rate (patience 0).
        reduce_lr_on_plateau: Some(
            ReduceLrOnPlateau::new(Monitor::val_loss()).patience(0).min_delta(10.0).factor(0.5),
        ),
        checkpoint_dir: checkpoint,
        backend,
        ..TrainerOptions::default()
    }
}

/// Trains to the end. With `pause`, the run stops in the middle of its second epoch (after
/// at least one step of it), writes the `pause` marker and sleeps: the parent kills it there.
fn train_to_end(backend: &str, checkpoint: Option<PathBuf>, pause: Option<PathBuf>) -> Vec<f32> {
    let train =
        load_mnist(default_mnist_dir().expect("bundled MNIST found")).expect("MNIST").train.take(6000);
    let mut t = Trainer::resume(options(backend, checkpoint.clone())).expect("trainer");
    if let Some(dir) = checkpoint {
        // Tells the parent where this run started.
        std::fs::write(dir.join(format!("started-{}", t.epochs_completed())), b"").expect("marker");
    }
    let first_epoch = t.epochs_completed();
    t.fit(&train, None, |event| {
        if let (Some(marker), TrainEvent::Progress { epoch, steps_done, .. }) = (&pause, event) {
            if *epoch == 1 && first_epoch == 0 && *steps_done > 0 {
                std::fs::write(marker, b"").expect("marker");
                std::thread::sleep(Duration::from_secs(600));
            }
        }
    })
    .expect("fit");
    assert_eq!(t.learning_rate(), 1e-3 / 8.0, "reduced after epochs 1, 2 and 3");
    t.parameters().expect("parameters")
}

/// Runs only as the child of `killed_and_resumed_*`.
#[test]
#[ignore = "child process of the kill-and-resume tests"]
fn child_trainer() {
    let dir = PathBuf::from(std::env::var("WGTRAIN_TEST_CHILD_DIR").expect("child only"));
    let backend = std::env::var("WGTRAIN_TEST_CHILD_BACKEND").expect("child only");
    let params = train_to_end(&backend, Some(dir.clone()), Some(dir.join("paused")));
    std::fs::write(dir.join("final.bin"), bytemuck_bytes(&params)).expect("write result");
}

fn bytemuck_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn spawn_child(dir: &Path, backend: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_trainer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("WGTRAIN_TEST_CHILD_DIR", dir)
        .env("WGTRAIN_TEST_CHILD_BACKEND", backend)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

fn killed_and_resumed(backend: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = dir.path().join(wgtrain::checkpoint::CHECKPOINT_FILE);

    // First run: it checkpoints epoch 1, pauses in the middle of epoch 2, and is killed there.
    let mut child = spawn_child(dir.path(), backend);
    let start = Instant::now();
    while !dir.path().join("paused").exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "the child did not reach epoch 2 in 5 minutes");
        if let Some(status) = child.try_wait().expect("poll child") {
            panic!("child exited before it reached epoch 2: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ckpt.exists(), "epoch 1's checkpoint must exist when epoch 2 is under way");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(!dir.path().join("final.bin").exists(), "the child finished before it was killed; kill earlier");

    // Second run resumes from the checkpoint and finishes.
    let status = spawn_child(dir.path(), backend).wait().expect("resumed child");
    assert!(status.success(), "resumed child failed: {status}");
    let resumed: Vec<u8> = std::fs::read(dir.path().join("final.bin")).expect("result");
    assert!(
        (1..EPOCHS).any(|e| dir.path().join(format!("started-{e}")).exists()),
        "the second run did not resume from a checkpoint"
    );

    let uninterrupted = bytemuck_bytes(&train_to_end(backend, None, None));
    assert_eq!(resumed.len(), uninterrupted.len());
    let differing = resumed.chunks(4).zip(uninterrupted.chunks(4)).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing, 0,
        "{backend}: {differing} weights differ between the resumed and the uninterrupted run"
    );
}

#[test]
fn killed_and_resumed_on_cpu_matches_uninterrupted() {
    killed_and_resumed("cpu");
}

#[test]
fn killed_and_resumed_on_gpu_matches_uninterrupted() {
    killed_and_resumed("gpu");
}
