//! Train a ReLU MLP on a CSV table with early stopping and score held-out rows: the wgtrain side
//! of `benches/tabular_peers.sh`, which runs PyTorch (`benches/torch_tabular.py`) and Keras
//! (`benches/keras_tabular.py`) on the same split files with the same recipe. Prints one JSON
//! line like theirs: the test metric (`accuracy` or `r2`), epochs run, seconds per epoch.
//!
//!     cargo run --release --example tabular -- --data data/tabular/digits.csv --target digit \
//!         --task classify --split-seed 0 --split-dir /tmp/digits --backend lavapipe
//!     cargo run --release --example tabular -- --train T.csv --test S.csv --target target --task regress
//!
//! With `--data`, the file is split 80/20 by `--split-seed` into `--split-dir`/{train,test}.csv
//! (a temporary folder if not given) and training reads those files, as the peers do;
//! `--split-only` stops there.

use std::path::PathBuf;

use clap::Parser;
use serde_json::json;

#[path = "support/tabular.rs"]
mod tabular;
use tabular::{Recipe, Task};

#[derive(Parser)]
#[command(about = "Train an MLP on a CSV table with wgtrain")]
struct Args {
    /// A whole table to split 80/20 (with --split-seed); or give --train and --test.
    #[arg(long, conflicts_with_all = ["train", "test"])]
    data: Option<PathBuf>,
    #[arg(long, requires = "test")]
    train: Option<PathBuf>,
    #[arg(long, requires = "train")]
    test: Option<PathBuf>,
    /// Seed of the 80/20 split of --data.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Where to write the split files of --data (train.csv, test.csv).
    #[arg(long, requires = "data")]
    split_dir: Option<PathBuf>,
    /// Write the split files of --data into --split-dir and stop.
    #[arg(long, requires = "split_dir")]
    split_only: bool,
    /// The target column.
    #[arg(long)]
    target: String,
    /// classify or regress.
    #[arg(long)]
    task: String,
    /// cpu, lavapipe, gl or vulkan.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Seeds the weights, the 10 % validation hold-out and the shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "64,64", value_delimiter = ',')]
    hidden: Vec<usize>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 10)]
    patience: usize,
    #[arg(long, default_value_t = 200)]
    epochs: usize,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), wgtrain::Error> {
    let task = Task::parse(&args.task)?;
    let scratch = std::env::temp_dir().join(format!("wgtrain-tabular-{}", std::process::id()));
    let (train_path, test_path) = match (&args.data, &args.train, &args.test) {
        (Some(data), _, _) => {
            tabular::write_split(data, args.split_seed, args.split_dir.as_ref().unwrap_or(&scratch))?
        }
        (None, Some(train), Some(test)) => (train.clone(), test.clone()),
        _ => return Err(wgtrain::Error::Config("give --data FILE, or --train and --test".into())),
    };
    if args.split_only {
        return Ok(());
    }
    let (train, test) = tabular::load(&train_path, &test_path, &args.target, task)?;
    if args.data.is_some() && args.split_dir.is_none() {
        std::fs::remove_dir_all(&scratch).map_err(|e| wgtrain::Error::io(&scratch, e))?;
    }
    let recipe = Recipe {
        hidden: args.hidden,
        batch: args.batch,
        patience: args.patience,
        epochs: args.epochs,
        seed: args.seed,
    };
    let out = tabular::train_and_score(&train, &test, task, &recipe, tabular::backend(&args.backend)?)?;
    let line = json!({
        task.metric(): out.quality, "epochs_run": out.epochs_run,
        "seconds_per_epoch": out.seconds_per_epoch, "rows": out.rows,
        "backend": args.backend, "devices": out.devices,
    });
    println!("{line}");
    Ok(())
}
