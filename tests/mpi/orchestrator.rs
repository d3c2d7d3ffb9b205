//! The orchestrator, started by cargo: runs every scenario under `mpirun` and checks what
//! the ranks wrote and what `mpirun` printed.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wgtrain::{Backend, Trainer, TrainerOptions};

use super::{
    from_bytes, lavapipe, mnist_train, options, options_with_dropout, regression_data, regression_options,
};

/// What an `mpirun` left: its exit status, everything it and its ranks printed, and how
/// long it ran.
struct Run {
    success: bool,
    output: String,
    seconds: f64,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// `mpirun -np <np> <this binary> <args>`, ended (SIGTERM, which mpirun forwards to its
/// ranks) if it runs past `limit`.
fn mpirun(np: usize, args: &[&str], limit: Duration) -> Run {
    let mut cmd = Command::new("mpirun");
    if is_root() {
        cmd.arg("--allow-run-as-root");
    }
    // Shared CI machines have fewer cores than ranks.
    cmd.args(["--oversubscribe", "-np", &np.to_string()]);
    cmd.arg(std::env::current_exe().expect("this binary")).args(args);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun on the PATH (apt-get install openmpi-bin)");
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut s| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
    })
    .collect();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll mpirun") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = start.elapsed().as_secs_f64();
    let output: String = readers.into_iter().map(|r| r.join().unwrap_or_default()).collect();
    match status {
        None => panic!("mpirun {args:?} ran past {limit:?}; output:\n{output}"),
        Some(s) => Run { success: s.success(), output, seconds },
    }
}

fn must_succeed(np: usize, args: &[&str], limit: Duration) -> Run {
    let run = mpirun(np, args, limit);
    assert!(run.success, "mpirun -np {np} {args:?} failed:\n{}", run.output);
    run
}

fn params(dir: &Path, rank: usize) -> Vec<f32> {
    from_bytes(&std::fs::read(dir.join(format!("params-{rank}.bin"))).expect("a rank's weights"))
}

fn history(dir: &Path, rank: usize) -> Vec<(f32, f32, f32)> {
    let text = std::fs::read_to_string(dir.join(format!("history-{rank}.json"))).expect("history");
    serde_json::from_str(&text).expect("history json")
}

/// Every rank's weights, checked bit-identical to rank 0's.
fn identical_on_every_rank(dir: &Path, ranks: usize) -> Vec<f32> {
    let p0 = params(dir, 0);
    for r in 1..ranks {
        let differing = params(dir, r).iter().zip(&p0).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differing, 0, "rank {r}'s weights differ from rank 0's in {differing} places");
    }
    p0
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn reference(backend: Backend, rows: usize, batch: usize, epochs: usize) -> (Vec<f32>, Vec<(f32, f32, f32)>) {
    reference_of(options(backend, batch, epochs, 5), rows)
}

fn reference_of(options: TrainerOptions, rows: usize) -> (Vec<f32>, Vec<(f32, f32, f32)>) {
    let mut t = Trainer::new(options).expect("trainer");
    t.fit(&mnist_train(rows), None, |_| {}).expect("fit");
    let h = t
        .history()
        .epochs
        .iter()
        .map(|e| (e.get("loss").unwrap(), e.get("val_loss").unwrap(), e.get("val_accuracy").unwrap()))
        .collect();
    (t.parameters().expect("parameters"), h)
}

/// Ranks 3 and 2: exact rank-ordered sums and the all-gather.
fn exchange() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    must_succeed(3, &["exchange", d], Duration::from_secs(120));
    must_succeed(2, &["exchange", d], Duration::from_secs(120));
}

/// 2 ranks of 1 CPU replica: bit-identical weights on both ranks; against the CPU
/// executor in one process with the same global batch and seed, the same result but for
/// the order of the per-row gradient terms (two partial sums added instead of one), so
/// within 1e-4 after 3 epochs of 85 steps, and the same validation accuracy band.
fn two_cpu_ranks_equal_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    must_succeed(2, &["train", d, "cpu", "3000", "32", "3"], Duration::from_secs(300));
    let p = identical_on_every_rank(dir.path(), 2);
    let (p1, h1) = reference(Backend::Cpu, 3000, 32, 3);
    let max = max_diff(&p, &p1);
    assert!(max <= 1e-4, "2 CPU ranks drifted from one CPU process by {max}");
    for (e, (a, b)) in history(dir.path(), 0).iter().zip(&h1).enumerate() {
        assert!((a.1 - b.1).abs() <= 1e-3 * b.1, "epoch {e}: val_loss {} vs {}", a.1, b.1);
        assert!((a.2 - b.2).abs() <= 0.01, "epoch {e}: val accuracy {} vs {}", a.2, b.2);
    }
    assert_eq!(history(dir.path(), 0), history(dir.path(), 1), "both ranks log the same metrics");
}

/// As `two_cpu_ranks_equal_one_process` with dropout 0.3 after the hidden layer: each rank
/// draws the masks of its rows' positions in the global batch, so the two ranks drop what
/// one process drops, and the bound is the same.
fn two_cpu_ranks_with_dropout_equal_one_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    must_succeed(2, &["train", d, "cpu-dropout", "3000", "32", "3"], Duration::from_secs(300));
    let p = identical_on_every_rank(dir.path(), 2);
    let (p1, _) = reference_of(options_with_dropout(Backend::Cpu, 32, 3, 5), 3000);
    let max = max_diff(&p, &p1);
    assert!(max <= 1e-4, "2 CPU ranks with dropout drifted from one CPU process by {max}");
}

/// 2 ranks of 1 lavapipe replica against 1 process of 2 lavapipe replicas (same global
/// batch, seed and split): the same per-replica gradients added in the same order, so
/// the same bits; and against 1 replica within the tolerance of tests/parallel.rs.
fn two_lavapipe_ranks_equal_two_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    must_succeed(2, &["train", d, "vulkan", "2000", "64", "2"], Duration::from_secs(400));
    let p = identical_on_every_rank(dir.path(), 2);
    let (p2, h2) = reference(lavapipe(2), 2000, 64, 2);
    let differing = p.iter().zip(&p2).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differing, 0, "2 ranks x 1 replica differ from 1 process x 2 replicas in {differing} weights");
    assert_eq!(history(dir.path(), 0), h2, "the same metrics, bit for bit");
    let (p1, _) = reference(lavapipe(1), 2000, 64, 2);
    let max = max_diff(&p, &p1);
    assert!(max <= 1e-4, "2 lavapipe ranks drifted from one replica by {max}");
}

/// The mean squared error across 2 lavapipe ranks: each rank's sums behind mae, rmse and r2
/// are exchanged and added in rank order, as 2 replicas in one process add theirs, so the
/// weights and every metric are those of 1 process x 2 replicas, bit for bit.
fn regression_on_two_lavapipe_ranks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    must_succeed(2, &["regress", d, "vulkan"], Duration::from_secs(400));
    let p = identical_on_every_rank(dir.path(), 2);
    let (p2, h2) = regression_reference(lavapipe(2));
    let differing = p.iter().zip(&p2).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    assert_eq!(differing, 0, "2 ranks x 1 replica differ from 1 process x 2 replicas in {differing} weights");
    assert_eq!(history(dir.path(), 0), h2, "the same loss, val_loss and val_r2, bit for bit");
}

/// The mean squared error across 2 CPU ranks against the CPU executor in one process: the
/// same steps but for the order of the per-row gradient terms (two partial sums added), so
/// within 1e-4 after 2 epochs of 25 steps, and the metrics to float rounding of their sums.
fn regression_on_two_cpu_ranks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    must_succeed(2, &["regress", d, "cpu"], Duration::from_secs(400));
    let p = identical_on_every_rank(dir.path(), 2);
    let (p1, h1) = regression_reference(Backend::Cpu);
    let max = max_diff(&p, &p1);
    assert!(max <= 1e-4, "2 CPU ranks drifted from one process by {max}");
    for (a, b) in history(dir.path(), 0).iter().zip(&h1) {
        for (x, y) in [(a.0, b.0), (a.1, b.1), (a.2, b.2)] {
            assert!((x - y).abs() <= 1e-4 * y.abs().max(1e-2), "ranks {a:?} against one process {b:?}");
        }
    }
}

/// Weights and (loss, val_loss, val_r2) per epoch of the regression in this process.
fn regression_reference(backend: Backend) -> (Vec<f32>, Vec<(f32, f32, f32)>) {
    let mut t = Trainer::new(regression_options(backend, 50, 2)).expect("trainer");
    t.fit(&regression_data(1537), None, |_| {}).expect("fit");
    let h = t
        .history()
        .epochs
        .iter()
        .map(|e| (e.get("loss").unwrap(), e.get("val_loss").unwrap(), e.get("val_r2").unwrap()))
        .collect();
    (t.parameters().expect("parameters"), h)
}

/// The demo's run on 2 CPU ranks: at least 97.0 % test accuracy with early stopping,
/// bit-identical weights on both ranks.
fn mnist_demo_on_two_ranks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let run = must_succeed(2, &["mnist", d], Duration::from_secs(400));
    identical_on_every_rank(dir.path(), 2);
    let text = std::fs::read_to_string(dir.path().join("mnist-0.json")).expect("summary");
    let s: serde_json::Value = serde_json::from_str(&text).expect("json");
    let acc = s["test_accuracy"].as_f64().expect("accuracy");
    println!("    mnist on 2 CPU ranks: {s} in {:.1} s", run.seconds);
    assert!(acc >= 0.970, "test accuracy {acc} < 0.970");
    assert_eq!(text, std::fs::read_to_string(dir.path().join("mnist-1.json")).expect("rank 1's"));
}

/// Whether process `pid` is gone, or goes within 5 s (mpirun may exit while the kernel
/// is still ending a rank it signalled).
fn gone(pid: &str) -> bool {
    let proc = Path::new("/proc").join(pid.trim());
    let start = Instant::now();
    while proc.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    !proc.exists()
}

/// Rank 1 killed (SIGKILL) in the second epoch: mpirun ends the job within 30 s, fails,
/// and names rank 1; no rank is left. Then rank 0's checkpoint resumes the run on 2 ranks
/// (bit-identical to an uninterrupted 2-rank run), on 1 and on 3 ranks (the global state
/// is in the checkpoint, only the split changes: the same result within tolerance).
fn killed_rank_then_resume_at_other_rank_counts() {
    let whole = tempfile::tempdir().expect("tempdir");
    let w = whole.path().to_str().expect("utf-8 path");
    must_succeed(2, &["checkpointed", w, "plain"], Duration::from_secs(300));
    let uninterrupted = identical_on_every_rank(whole.path(), 2);

    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let run = mpirun(2, &["checkpointed", d, "kill"], Duration::from_secs(300));
    assert!(!run.success, "the job must fail when a rank is killed:\n{}", run.output);
    assert!(dir.path().join("signalled").exists(), "rank 1 never reached epoch 2:\n{}", run.output);
    assert!(
        run.output.contains("rank 1") && run.output.contains("signal 9"),
        "mpirun must name rank 1:\n{}",
        run.output
    );
    let since_kill = dir.path().join("signalled").metadata().and_then(|m| m.modified()).expect("mtime");
    let secs = since_kill.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    println!("    killed rank 1: the job ended at most {secs:.1} s after the kill");
    assert!(secs < 30.0, "the job ended {secs:.1} s after rank 1 was killed");
    for r in 0..2 {
        let pid = std::fs::read_to_string(dir.path().join(format!("pid-{r}"))).expect("pid");
        assert!(gone(&pid), "rank {r} (pid {pid}) outlived mpirun");
    }
    assert!(!dir.path().join("params-0.bin").exists(), "rank 0 finished although rank 1 died");
    let ckpt = dir.path().join("ckpt");
    assert!(ckpt.exists(), "rank 0 checkpointed epoch 1 before the kill");

    for np in [2usize, 1, 3] {
        let again = tempfile::tempdir().expect("tempdir");
        copy_dir(&ckpt, &again.path().join("ckpt"));
        let a = again.path().to_str().expect("utf-8 path");
        must_succeed(np, &["checkpointed", a, "plain"], Duration::from_secs(300));
        assert!(again.path().join("started-1-0").exists(), "{np} ranks: did not resume after epoch 1");
        let p = identical_on_every_rank(again.path(), np);
        let max = max_diff(&p, &uninterrupted);
        println!("    resumed on {np} rank(s): max |w - uninterrupted| = {max:e}");
        if np == 2 {
            assert_eq!(max, 0.0, "resumed on 2 ranks must equal the uninterrupted 2-rank run");
        } else {
            assert!(max <= 1e-3, "resumed on {np} ranks drifted by {max}");
        }
        assert_eq!(history(again.path(), 0).len(), history(whole.path(), 0).len(), "{np} ranks: epochs run");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read checkpoint dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

/// Rank 1 stopped (SIGSTOP) in the second epoch, alive but silent: rank 0 gives up after
/// the group's 3 s limit with an error naming rank 1, and the job ends within 30 s.
fn hung_rank_is_named_by_its_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let run = mpirun(2, &["checkpointed", d, "hang"], Duration::from_secs(300));
    assert!(!run.success, "the job must fail:\n{}", run.output);
    assert!(
        run.output.contains("rank 0: rank 1 sent nothing for 3 s"),
        "rank 0 must name rank 1:\n{}",
        run.output
    );
    let since =
        dir.path().join("signalled").metadata().and_then(|m| m.modified()).expect("rank 1 stopped itself");
    let secs = since.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    println!("    stopped rank 1: the job ended at most {secs:.1} s after the stop");
    assert!(secs < 30.0, "the job ended {secs:.1} s after rank 1 stopped");
    for r in 0..2 {
        let pid = std::fs::read_to_string(dir.path().join(format!("pid-{r}"))).expect("pid");
        assert!(gone(&pid), "rank {r} (pid {pid}) outlived mpirun");
    }
}

/// A rank that cannot open its adapter fails the job at start: it says why, its peer
/// names it.
fn a_rank_without_its_adapter_fails_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let run = mpirun(2, &["bad-adapter", d], Duration::from_secs(120));
    assert!(!run.success, "the job must fail:\n{}", run.output);
    assert!(
        run.output.contains("rank 1: could not open its replicas: no GPU adapter found: adapter 99"),
        "rank 1's reason:\n{}",
        run.output
    );
    assert!(
        run.output.contains("rank 0: rank 1 could not open its replicas"),
        "rank 0 names rank 1:\n{}",
        run.output
    );
}

pub fn main() {
    let tests: &[(&str, fn())] = &[
        ("exchange", exchange),
        ("a_rank_without_its_adapter_fails_the_start", a_rank_without_its_adapter_fails_the_start),
        ("two_cpu_ranks_equal_one_process", two_cpu_ranks_equal_one_process),
        ("two_cpu_ranks_with_dropout_equal_one_process", two_cpu_ranks_with_dropout_equal_one_process),
        ("mnist_demo_on_two_ranks", mnist_demo_on_two_ranks),
        ("hung_rank_is_named_by_its_peer", hung_rank_is_named_by_its_peer),
        ("killed_rank_then_resume_at_other_rank_counts", killed_rank_then_resume_at_other_rank_counts),
        ("two_lavapipe_ranks_equal_two_replicas", two_lavapipe_ranks_equal_two_replicas),
        ("regression_on_two_lavapipe_ranks", regression_on_two_lavapipe_ranks),
        ("regression_on_two_cpu_ranks", regression_on_two_cpu_ranks),
    ];
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut failed = Vec::new();
    let mut passed = 0;
    for (name, test) in
        tests.iter().filter(|(n, _)| filter.is_empty() || filter.iter().any(|f| n.contains(f.as_str())))
    {
        println!("test {name} ...");
        let start = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok ({:.1} s)", start.elapsed().as_secs_f64());
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    // The closing line in the plain form CI tools read: "N passed, N failed".
    println!("mpi: {passed} passed, {} failed", failed.len());
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(1);
    }
}
