//! The demo: train the classic 784-64-10 MLP on the bundled MNIST with early stopping, on the
//! fastest executor of the machine (a hardware GPU, else the CPU executor; `--adapter` forces
//! one), and report the test accuracy.
//!
//!     cargo run --release --example mnist
//!     cargo run --release --example mnist -- --adapter vulkan --epochs 5
//!     cargo run --release --example mnist -- --checkpoint ckpt --resume --save model.safetensors

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use wgtrain::data::{find_mnist_dir, load_mnist};
use wgtrain::{
    Activation, AdapterSelection, Backend, Decision, EarlyStopping, MlpSpec, Monitor, Optimizer, TrainEvent,
    Trainer, TrainerOptions, TuningCache,
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
    /// Write the full training state to this folder after every epoch.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue from the last checkpoint in --checkpoint DIR (if there is one).
    #[arg(long, requires = "checkpoint")]
    resume: bool,
    /// Save the final model (safetensors) here.
    #[arg(long)]
    save: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), wgtrain::Error> {
    let mnist = load_mnist(find_mnist_dir(args.data.as_deref())?)?;
    let train = match args.train_samples {
        Some(n) => mnist.train.take(n),
        None => mnist.train,
    };
    let backend = match args.adapter.as_str() {
        "auto" => Backend::Auto,
        "cpu" => Backend::Cpu,
        other => {
            let selection: AdapterSelection = other.parse()?;
            Backend::Gpu { selection, replicas_per_adapter: args.replicas_per_adapter }
        }
    };
    let choice = backend.resolve();
    match backend {
        Backend::Auto => println!("executor: {choice}"),
        _ => println!("executor: {} (--adapter {})", choice.kind(), args.adapter),
    }
    let mut sizes = vec![train.features];
    sizes.extend(&args.hidden);
    sizes.push(mnist.test.classes.max(train.classes));
    let options = TrainerOptions {
        spec: MlpSpec::classifier(&sizes, Activation::Relu),
        optimizer: Optimizer::adam(args.lr),
        batch_size: args.batch_size,
        epochs: args.epochs,
        seed: args.seed,
        validation_split: args.validation_split,
        early_stopping: Some(
            EarlyStopping::new(Monitor::ValLoss)
                .patience(args.patience)
                .min_delta(args.min_delta)
                .restore_best_weights(true),
        ),
        backend: choice.backend,
        tuning_cache: if args.no_tuning_cache { TuningCache::Disabled } else { TuningCache::User },
        checkpoint_dir: args.checkpoint.clone(),
        ..TrainerOptions::default()
    };
    let mut trainer = if args.resume { Trainer::resume(options)? } else { Trainer::new(options)? };
    if trainer.epochs_completed() > 0 {
        println!("resumed after epoch {}", trainer.epochs_completed());
    }
    let devices = trainer.devices();
    println!("training {:?} on {} ({} training images)", sizes, devices.join(", "), train.len());

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix:>2} [{bar:30}] {pos}/{len} steps {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut seconds = Vec::new();
    let report = trainer.fit(&train, None, |event| match event {
        TrainEvent::Progress { epoch, steps_done, steps, samples_per_second } => {
            bar.set_prefix(format!("{}", epoch + 1));
            bar.set_length(*steps as u64);
            bar.set_position(*steps_done as u64);
            bar.set_message(format!("{samples_per_second:>8.0} samples/s"));
        }
        TrainEvent::EpochEnd { record: r, decision } => {
            seconds.push(r.seconds);
            let line = format!(
                "epoch {:>2}: loss {:.4} acc {:.4} | val_loss {:.4} val_acc {:.4} | {:.2} s, {:.0} samples/s{}",
                r.epoch + 1,
                r.loss,
                r.accuracy,
                r.val_loss.unwrap_or(f32::NAN),
                r.val_accuracy.unwrap_or(f32::NAN),
                r.seconds,
                r.samples_per_second,
                if *decision == Decision::Stop { "  <- early stop" } else { "" }
            );
            // A hidden bar (output not a terminal) swallows println: print directly then.
            if bar.is_hidden() { println!("{line}") } else { bar.println(line) }
            bar.set_position(0);
        }
    })?;
    bar.finish_and_clear();
    match &report.stop_message {
        Some(m) => println!("stopped early: {m}"),
        None => println!("ran all {} epochs", report.epochs_run),
    }
    if let Some(stats) = trainer.parallel_stats() {
        let secs: f64 = report.history.epochs.iter().map(|e| e.seconds).sum();
        for (r, (rows, name)) in stats.rows_per_replica.iter().zip(&devices).enumerate() {
            println!("replica {r} ({name}): {:.0} samples/s", *rows as f64 / secs.max(1e-9));
        }
        let per_step = |x: f64| x / stats.steps.max(1) as f64 * 1e3;
        println!(
            "per step: compute+download {:.3} ms, host reduction {:.3} ms, upload+update {:.3} ms",
            per_step(stats.compute_and_download_secs),
            per_step(stats.reduce_secs),
            per_step(stats.upload_secs)
        );
    }
    if let Some(e) = report.restored_epoch {
        println!("restored the weights of epoch {} (best val_loss)", e + 1);
    }
    let test = trainer.evaluate(&mnist.test)?;
    println!("test accuracy {:.4}, test loss {:.4} ({} images)", test.accuracy, test.loss, test.samples);

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
    if let Some(path) = &args.summary_json {
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        let summary = json!({
            "test_accuracy": test.accuracy, "test_loss": test.loss, "epochs_run": report.epochs_run,
            "stopped_epoch": report.stopped_epoch, "best_epoch": report.best_epoch,
            "seconds_per_epoch": median, "samples_per_second": train.len() as f64 / median.max(1e-9),
            "adapter": devices.join(", "),
        });
        std::fs::write(path, summary.to_string()).map_err(|e| wgtrain::Error::io(path, e))?;
    }
    Ok(())
}
