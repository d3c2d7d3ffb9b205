//! The demo: train the classic 784-64-10 MLP on the bundled MNIST with early stopping, on the
//! fastest executor of the machine (a hardware GPU, else the CPU executor; `--adapter` forces
//! one), and report the test accuracy.
//!
//!     cargo run --release --example mnist
//!     cargo run --release --example mnist -- --adapter vulkan --epochs 5
//!     cargo run --release --example mnist -- --checkpoint ckpt --resume --save model.safetensors
//!     cargo run --release --example mnist -- --plot curves.svg
//!     mpirun -np 2 cargo run --release --features mpi --example mnist -- --distributed mpi

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use wgtrain::data::{find_mnist_dir, load_mnist, Dataset};
use wgtrain::{
    Activation, AdapterSelection, Backend, Decision, EarlyStopping, Evaluation, FitReport, Monitor, Network,
    Optimizer, TrainEvent, Trainer, TrainerOptions, TuningCache,
};

#[derive(Parser)]
#[command(about = "Train an MLP on MNIST with wgtrain")]
struct Args {
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Hidden layer sizes, comma separated (e.g. 64 or 256,128).
    #[arg(long, default_value = "64", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Early stopping patience (epochs without val_loss improvement).
    #[arg(long, default_value_t = 5)]
    patience: usize,
    #[arg(long, default_value_t = 0.0)]
    min_delta: f64,
    #[arg(long, default_value_t = 0.1)]
    validation_split: f32,
    /// Folder with the MNIST (or Fashion-MNIST) IDX files, raw or .gz. Default:
    /// $WGTRAIN_MNIST_DIR, else the repository's data/mnist.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    train_samples: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto (a hardware GPU, else the CPU executor), cpu, or GPU adapters: best (one per
    /// physical device), all, vulkan, gl, discrete, indices like 0,2.
    #[arg(long, default_value = "auto")]
    adapter: String,
    /// Neither read nor write the kernel tuning decisions kept in ~/.cache/wgtrain.
    #[arg(long)]
    no_tuning_cache: bool,
    /// Logical devices per adapter (data parallel on one adapter).
    #[arg(long, default_value_t = 1)]
    replicas_per_adapter: usize,
    /// Write a JSON summary here.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Write the per-epoch history here (.csv or .json).
    #[arg(long)]
    history: Option<PathBuf>,
    /// Draw the per-epoch curves here (.svg or .png), as `wgtrain fit --plot` does.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the full training state to this folder after every epoch.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue from the last checkpoint in --checkpoint DIR (if there is one).
    #[arg(long, requires = "checkpoint")]
    resume: bool,
    /// Save the final model (safetensors) here.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Train across processes: `mpi` (launch with mpirun, build with --features mpi). With
    /// `--adapter local-rank` each process takes its own GPU.
    #[arg(long)]
    distributed: Option<String>,
    /// Seconds a process waits for a peer before it fails naming it (with --distributed).
    #[arg(long, default_value_t = 60)]
    peer_timeout: u64,
}

#[path = "support/distributed.rs"]
mod distributed;
#[path = "../src/bin/wgtrain/plot.rs"]
mod plot;

fn main() {
    let args = Args::parse();
    // The MPI job lives until a successful end (see support/distributed.rs).
    let group = distributed::join(args.distributed.as_deref(), args.peer_timeout)
        .unwrap_or_else(|e| distributed::fail(e));
    if let Err(e) = run(args, group.as_ref()) {
        distributed::fail(e);
    }
}

fn run(mut args: Args, group: Option<&distributed::Group>) -> Result<(), wgtrain::Error> {
    // Across processes only rank 0 prints and writes files.
    let primary = distributed::is_primary(group);
    if args.adapter == "local-rank" {
        args.adapter = distributed::local_rank_index(group)?;
    }
    if let Some(path) = &args.plot {
        plot::check_plot_path(path)?;
    }
    // Load.
    let mnist = load_mnist(find_mnist_dir(args.data.as_deref())?)?;
    let train = match args.train_samples {
        Some(n) => mnist.train.take(n),
        None => mnist.train,
    };
    // Build: the executor, the network, the trainer (fresh or resumed).
    let backend = executor(&args, group, primary)?;
    let mut sizes = vec![train.features()];
    sizes.extend(&args.hidden);
    sizes.push(mnist.test.classes().max(train.classes()));
    let mut trainer = trainer(&args, &sizes, backend)?;
    let devices = trainer.devices();
    if primary {
        if trainer.epochs_completed() > 0 {
            println!("resumed after epoch {}", trainer.epochs_completed());
        }
        let on = distributed::describe(group);
        println!("{on}training {:?} on {} ({} training images)", sizes, devices.join(", "), train.len());
    }
    // Train, stopping early on val_loss.
    let (report, seconds) = fit_with_progress(&mut trainer, &train, primary)?;
    match distributed::identical_everywhere(group, &trainer.parameters()?)? {
        Some(true) if primary => println!("weights bit-identical on every rank"),
        Some(false) => return Err(wgtrain::Error::Config("the ranks ended with different weights".into())),
        _ => {}
    }
    if !primary {
        return Ok(());
    }
    match &report.stop_message {
        Some(m) => println!("stopped early: {m}"),
        None => println!("ran all {} epochs", report.epochs_run),
    }
    print_parallel_stats(&trainer, &report, &devices);
    if let Some(e) = report.restored_epoch {
        println!("restored the weights of epoch {} (best val_loss)", e + 1);
    }
    // Evaluate.
    let test = trainer.evaluate(&mnist.test)?;
    let (test_accuracy, test_loss) = (test.get("accuracy"), test.get("loss"));
    let shown = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    println!(
        "test accuracy {}, test loss {} ({} images)",
        shown(test_accuracy),
        shown(test_loss),
        test.samples
    );
    write_outputs(&args, &trainer, &report, &seconds, &test, train.len(), &devices)
}

/// The executor `--adapter` names (the machine's fastest for `auto`), said on rank 0; across
/// processes each rank runs it on its own share.
fn executor(
    args: &Args,
    group: Option<&distributed::Group>,
    primary: bool,
) -> Result<Backend, wgtrain::Error> {
    let backend = match args.adapter.as_str() {
        "auto" => Backend::Auto,
        "cpu" => Backend::Cpu,
        other => {
            let selection: AdapterSelection = other.parse()?;
            Backend::Gpu { selection, replicas_per_adapter: args.replicas_per_adapter }
        }
    };
    let choice = backend.resolve();
    if primary {
        match &backend {
            Backend::Auto => println!("executor: {choice}"),
            _ => println!("executor: {} (--adapter {})", choice.kind(), args.adapter),
        }
    }
    Ok(distributed::backend(group, choice.backend))
}

/// A ReLU MLP of these `sizes` under Adam, early stopping on val_loss (restoring the best
/// weights), checkpointed when asked; resumed from the checkpoint with `--resume`.
fn trainer(args: &Args, sizes: &[usize], backend: Backend) -> Result<Trainer, wgtrain::Error> {
    let options = TrainerOptions {
        spec: Network::classifier(sizes, Activation::Relu),
        optimizer: Optimizer::adam(args.lr),
        batch_size: args.batch_size,
        epochs: args.epochs,
        seed: args.seed,
        validation_split: args.validation_split,
        early_stopping: Some(
            EarlyStopping::new(Monitor::val_loss())
                .patience(args.patience)
                .min_delta(args.min_delta)
                .restore_best_weights(true),
        ),
        backend,
        tuning_cache: if args.no_tuning_cache { TuningCache::Disabled } else { TuningCache::User },
        checkpoint_dir: args.checkpoint.clone(),
        ..TrainerOptions::default()
    };
    if args.resume {
        Trainer::resume(options)
    } else {
        Trainer::new(options)
    }
}

/// `fit` with a progress bar (rank 0, on a terminal) and a line per epoch; the report and
/// each epoch's seconds.
fn fit_with_progress(
    trainer: &mut Trainer,
    train: &Dataset,
    primary: bool,
) -> Result<(FitReport, Vec<f64>), wgtrain::Error> {
    let bar = if primary { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix:>2} [{bar:30}] {pos}/{len} steps {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut seconds = Vec::new();
    // A hidden bar (output not a terminal, or not rank 0) swallows println: rank 0 prints
    // directly then.
    let say = |line: String| {
        if !bar.is_hidden() {
            bar.println(line)
        } else if primary {
            println!("{line}")
        }
    };
    let report = trainer.fit(train, None, |event| match event {
        TrainEvent::Progress { epoch, steps_done, steps, samples_per_second } => {
            bar.set_prefix(format!("{}", epoch + 1));
            bar.set_length(*steps as u64);
            bar.set_position(*steps_done as u64);
            bar.set_message(format!("{samples_per_second:>8.0} samples/s"));
        }
        TrainEvent::EpochEnd { record: r, decision } => {
            seconds.push(r.seconds);
            let metrics: Vec<String> = r.metrics.iter().map(|(name, v)| format!("{name} {v:.4}")).collect();
            let line = format!(
                "epoch {:>2}: {} | {:.2} s, {:.0} samples/s{}",
                r.epoch + 1,
                metrics.join(" "),
                r.seconds,
                r.samples_per_second,
                if *decision == Decision::Stop { "  <- early stop" } else { "" }
            );
            say(line);
            bar.set_position(0);
        }
        TrainEvent::LearningRateReduced { epoch, monitor, old_lr, new_lr, .. } => say(format!(
            "epoch {:>2}: {monitor} stopped improving, learning rate {old_lr:e} -> {new_lr:e}",
            epoch + 1
        )),
    })?;
    bar.finish_and_clear();
    Ok((report, seconds))
}

/// Data parallel only: each replica's samples/s and where a step's time went.
fn print_parallel_stats(trainer: &Trainer, report: &FitReport, devices: &[String]) {
    let Some(stats) = trainer.parallel_stats() else { return };
    let secs: f64 = report.history.epochs.iter().map(|e| e.seconds).sum();
    for (r, (rows, name)) in stats.rows_per_replica.iter().zip(devices).enumerate() {
        println!("replica {r} ({name}): {:.0} samples/s", *rows as f64 / secs.max(1e-9));
    }
    let per_step = |x: f64| x / stats.steps.max(1) as f64 * 1e3;
    println!(
        "per step: compute+download {:.3} ms, host reduction {:.3} ms, exchange between processes {:.3} ms, upload+update {:.3} ms",
        per_step(stats.compute_and_download_secs),
        per_step(stats.reduce_secs),
        per_step(stats.exchange_secs),
        per_step(stats.upload_secs)
    );
}

/// The files asked for: the model, the history, the curves, the JSON summary.
fn write_outputs(
    args: &Args,
    trainer: &Trainer,
    report: &FitReport,
    seconds: &[f64],
    test: &Evaluation,
    train_rows: usize,
    devices: &[String],
) -> Result<(), wgtrain::Error> {
    if let Some(path) = &args.save {
        trainer.model()?.save(path)?;
        println!("saved the model to {}", path.display());
    }
    if let Some(path) = &args.history {
        let h = trainer.history();
        if path.extension().is_some_and(|e| e == "json") {
            h.write_json(path)?
        } else {
            h.write_csv(path)?
        }
    }
    if let Some(path) = &args.plot {
        let marks = plot::PlotMarks { best_epoch: report.best_epoch, stopped_epoch: report.stopped_epoch };
        plot::plot_history(path, trainer.history(), &marks)?;
        println!("drew the curves in {}", path.display());
    }
    if let Some(path) = &args.summary_json {
        let mut sorted = seconds.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let summary = json!({
            "test_accuracy": test.get("accuracy"), "test_loss": test.get("loss"), "epochs_run": report.epochs_run,
            "stopped_epoch": report.stopped_epoch, "best_epoch": report.best_epoch,
            "seconds_per_epoch": median, "samples_per_second": train_rows as f64 / median.max(1e-9),
            "adapter": devices.join(", "),
        });
        std::fs::write(path, summary.to_string()).map_err(|e| wgtrain::Error::io(path, e))?;
    }
    Ok(())
}
