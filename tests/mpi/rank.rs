//! One rank of a scenario, started by `mpirun`: `<scenario> <dir> [args]`. Each scenario
//! writes what the orchestrator checks into `dir`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wgtrain::data::{default_mnist_dir, load_mnist};
use wgtrain::gpu::AdapterSelection;
use wgtrain::{Backend, EarlyStopping, Monitor, MpiGroup, ReduceLrOnPlateau, TrainEvent, Trainer};

use super::{
    lavapipe, mnist_train, options, options_with_dropout, regression_data, regression_options, to_bytes,
};

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let group = match MpiGroup::init() {
        Ok(g) => g,
        Err(e) => {
            say_error(&e);
            return 1;
        }
    };
    let dir = PathBuf::from(&args[1]);
    let result = match args[0].as_str() {
        "exchange" => exchange(&group),
        "train" => train(&group, &dir, &args[2..]),
        "regress" => regress(&group, &dir, &args[2]),
        "checkpointed" => checkpointed(&group, &dir, &args[2]),
        "mnist" => mnist(&group, &dir),
        "bad-adapter" => bad_adapter(&group),
        other => Err(wgtrain::Error::Config(format!("no scenario {other}"))),
    };
    match result {
        Ok(()) => {
            drop(group);
            0
        }
        Err(e) => {
            // Exit without finalizing MPI: finalizing waits for every rank.
            say_error(&e);
            std::process::exit(1);
        }
    }
}

/// One write for the whole line: `eprintln!` writes each piece of the format on its own,
/// and mpirun interleaves the pieces of two ranks that fail at once (seen in CI:
/// "error: rank 1: error: rank 0: ...").
fn say_error(e: &wgtrain::Error) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("error: {e}\n").as_bytes());
}

/// The rank-ordered sum, on lengths that do and do not divide by the ranks (down to
/// fewer floats than ranks), against the sum every rank can compute alone; and the
/// all-gather with ranks of different lengths.
fn exchange(group: &MpiGroup) -> wgtrain::Result<()> {
    let (rank, size) = (group.rank(), group.size());
    // Magnitudes from 1e-8 to 1e8: a different order of additions gives different bits.
    let value = |r: usize, i: usize| {
        ((i * 7 + r * 13) % 17) as f32
            * 10f32.powi((i % 17) as i32 - 8)
            * if (i + r).is_multiple_of(3) { -1.0 } else { 1.0 }
    };
    for len in [50_896usize, 1757, 2, 1] {
        let mut mine: Vec<f32> = (0..len).map(|i| value(rank, i)).collect();
        group.sum_in_rank_order(&mut mine)?;
        for (i, got) in mine.iter().enumerate() {
            let want = (0..size).fold(0.0f32, |acc, r| acc + value(r, i));
            assert_eq!(got.to_bits(), want.to_bits(), "len {len}, element {i}: {got} vs {want}");
        }
    }
    let all = group.all_gather(&vec![rank as u8; rank * 3])?;
    for (r, bytes) in all.iter().enumerate() {
        assert_eq!(bytes, &vec![r as u8; r * 3], "rank {r}'s bytes as gathered by rank {rank}");
    }
    Ok(())
}

/// `train <dir> <cpu|vulkan> <rows> <batch> <epochs>`: trains on this rank's backend and
/// writes its weights and history.
fn train(group: &MpiGroup, dir: &Path, args: &[String]) -> wgtrain::Result<()> {
    // `cpu`, `lavapipe`, or either with `-dropout`: the model with dropout.
    let local = match args[0].trim_end_matches("-dropout") {
        "cpu" => Backend::Cpu,
        _ => lavapipe(1),
    };
    let num = |i: usize| args[i].parse::<usize>().expect("a number");
    let backend = Backend::Mpi { group: group.clone(), local: Box::new(local) };
    let options = if args[0].ends_with("-dropout") { options_with_dropout } else { options };
    let mut trainer = Trainer::new(options(backend, num(2), num(3), 5))?;
    trainer.fit(&mnist_train(num(1)), None, |_| {})?;
    write_result(dir, group.rank(), &trainer)
}

/// `regress <dir> <cpu|vulkan>`: the regression of `regression_data` on each rank's CPU or
/// one lavapipe replica.
fn regress(group: &MpiGroup, dir: &Path, local: &str) -> wgtrain::Result<()> {
    let local = if local == "cpu" { Backend::Cpu } else { lavapipe(1) };
    let backend = Backend::Mpi { group: group.clone(), local: Box::new(local) };
    let mut trainer = Trainer::new(regression_options(backend, 50, 2))?;
    trainer.fit(&regression_data(1537), None, |_| {})?;
    write_result(dir, group.rank(), &trainer)
}

fn write_result(dir: &Path, rank: usize, trainer: &Trainer) -> wgtrain::Result<()> {
    let params = trainer.parameters()?;
    std::fs::write(dir.join(format!("params-{rank}.bin")), to_bytes(&params)).expect("write params");
    let h: Vec<(f32, f32, f32)> = trainer
        .history()
        .epochs
        .iter()
        .map(|e| {
            (
                e.get("loss").unwrap_or(f32::NAN),
                e.get("val_loss").unwrap_or(f32::NAN),
                e.get("val_accuracy").or(e.get("val_r2")).unwrap_or(f32::NAN),
            )
        })
        .collect();
    let json = serde_json::to_string(&h).expect("json");
    std::fs::write(dir.join(format!("history-{rank}.json")), json).expect("write history");
    Ok(())
}

/// `checkpointed <dir> <plain|kill|hang>`: CPU training with a checkpoint every epoch,
/// resumed from it if there is one. With `kill` (`hang`), rank 1 sends itself SIGKILL
/// (SIGSTOP) in the middle of the second epoch of a fresh run. The learning rate is halved on
/// a plateau after epochs 1, 2 and 3 (no epoch improves by 10): every rank must change it
/// together, and a resumed run must bring it back.
fn checkpointed(group: &MpiGroup, dir: &Path, role: &str) -> wgtrain::Result<()> {
    let rank = group.rank();
    std::fs::write(dir.join(format!("pid-{rank}")), std::process::id().to_string()).expect("pid");
    if role == "hang" {
        group.set_timeout(Duration::from_secs(3))?;
    }
    let backend = Backend::Mpi { group: group.clone(), local: Box::new(Backend::Cpu) };
    let mut options = options(backend, 32, 4, 11);
    options.checkpoint_dir = Some(dir.join("ckpt"));
    options.early_stopping =
        Some(EarlyStopping::new(Monitor::val_loss()).patience(3).restore_best_weights(true));
    options.reduce_lr_on_plateau =
        Some(ReduceLrOnPlateau::new(Monitor::val_loss()).patience(0).min_delta(10.0).factor(0.5));
    let mut trainer = Trainer::resume(options)?;
    let first = trainer.epochs_completed();
    std::fs::write(dir.join(format!("started-{first}-{rank}")), b"").expect("marker");
    let signal = match role {
        "kill" => Some("-KILL"),
        "hang" => Some("-STOP"),
        _ => None,
    };
    trainer.fit(&mnist_train(6000), None, |event| {
        if let (Some(signal), TrainEvent::Progress { epoch: 1, steps_done, .. }) = (signal, event) {
            if rank == 1 && first == 0 && *steps_done > 0 {
                std::fs::write(dir.join("signalled"), b"").expect("marker");
                let pid = std::process::id().to_string();
                let _ = Command::new("kill").args([signal, &pid]).status();
                std::thread::sleep(Duration::from_secs(600));
            }
        }
    })?;
    if trainer.learning_rate() != 1e-3 / 8.0 {
        let lr = trainer.learning_rate();
        return Err(wgtrain::Error::Config(format!("rank {rank} ended at learning rate {lr}, not 1e-3 / 8")));
    }
    write_result(dir, rank, &trainer)
}

/// The demo's run (examples/mnist.rs defaults) on the CPU: all of MNIST, batch 128, early
/// stopping on val_loss with patience 5 restoring the best weights, at most 20 epochs.
fn mnist(group: &MpiGroup, dir: &Path) -> wgtrain::Result<()> {
    let mnist = load_mnist(default_mnist_dir()?)?;
    let backend = Backend::Mpi { group: group.clone(), local: Box::new(Backend::Cpu) };
    let mut options = options(backend, 128, 20, 0);
    options.early_stopping =
        Some(EarlyStopping::new(Monitor::val_loss()).patience(5).restore_best_weights(true));
    let mut trainer = Trainer::new(options)?;
    let report = trainer.fit(&mnist.train, None, |_| {})?;
    let test = trainer.evaluate(&mnist.test)?;
    write_result(dir, group.rank(), &trainer)?;
    let summary = serde_json::json!({
        "test_accuracy": test.get("accuracy"), "epochs_run": report.epochs_run,
        "stopped_epoch": report.stopped_epoch, "restored_epoch": report.restored_epoch,
    });
    std::fs::write(dir.join(format!("mnist-{}.json", group.rank())), summary.to_string()).expect("write");
    Ok(())
}

/// Rank 1 asks for an adapter that does not exist; rank 0 trains on the CPU.
fn bad_adapter(group: &MpiGroup) -> wgtrain::Result<()> {
    let local = match group.rank() {
        1 => Backend::Gpu { selection: AdapterSelection::Indices(vec![99]), replicas_per_adapter: 1 },
        _ => Backend::Cpu,
    };
    let backend = Backend::Mpi { group: group.clone(), local: Box::new(local) };
    Trainer::new(options(backend, 32, 1, 0)).map(drop)
}
