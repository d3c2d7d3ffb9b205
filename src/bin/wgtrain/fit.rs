//! `wgtrain fit`: read a CSV (`--target` names the target columns) or NumPy arrays (an `.npz`
//! with arrays `x` and `y`, or `--data x.npy --target-data y.npy`; the task then follows `y`'s
//! dtype, see `read_numpy`), decide the task (`task::plan`), standardize the features (and a
//! one-column regression target) with statistics of the training rows only, train with
//! Keras's defaults (ReLU, Adam 1e-3, batch 32, a seeded 10 % validation split, early stopping
//! on `val_loss` restoring the best weights), and save the model with its preprocessing.
//! Metrics are printed, written and plotted in the target's units.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};
use wgtrain::data::{
    read_csv, read_npy, read_npz, validation_split, CsvOptions, Dataset, Standardizer, Table, Target,
    TargetKind,
};
use wgtrain::{
    Backend, EarlyStopping, Error, FitReport, History, Loss, Optimizer, Preprocessing, ReduceLrOnPlateau,
    TrainEvent, Trainer, TrainerOptions, TuningCache,
};

use crate::plot::{plot_history, PlotMarks};
use crate::progress::Progress;
use crate::task::{self, LossFlag, Plan, Task};

#[derive(Args)]
pub struct FitArgs {
    /// The training data, by extension: a CSV (header row, one row per sample; needs
    /// --target), an .npz with arrays x [rows, features] and y (numpy.savez(path, x=..., y=...)),
    /// or a .npy of the features x (needs --target-data).
    #[arg(long)]
    data: PathBuf,
    /// The target column(s) of a CSV, by header name (required for a CSV); several:
    /// multi-output regression, or multi-label when every cell is 0 or 1. Refused for NumPy
    /// input, whose target is the array y (named y, or y0, y1, ... for a 2-D y).
    #[arg(long, value_delimiter = ',')]
    target: Vec<String>,
    /// With --data x.npy: the .npy of the target y, one row per row of x (1-D integer: class
    /// labels; 2-D integer 0/1: multi-label; float: values).
    #[arg(long)]
    target_data: Option<PathBuf>,
    /// What to predict; inferred from the target when left out (text or few whole numbers:
    /// classify, two of them: binary; several 0/1 columns: multilabel; other numbers: regress).
    /// NumPy input: the task follows y's dtype, and a --task that differs is refused.
    #[arg(long, value_enum)]
    task: Option<Task>,
    /// The regression loss.
    #[arg(long, value_enum)]
    loss: Option<LossFlag>,
    /// Feature columns of a CSV to one-hot encode, comma separated (refused for NumPy input).
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Leave out rows of a CSV with a missing cell (NA, empty, ...) instead of failing
    /// (refused for NumPy input, which has no missing cells).
    #[arg(long)]
    drop_missing: bool,
    /// Hidden layer widths, comma separated (ReLU).
    #[arg(long, value_delimiter = ',', default_value = "64,64")]
    hidden: Vec<usize>,
    /// Dropout rate after each hidden layer (0: none), its masks seeded by --seed.
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Early stopping: epochs without improvement of --monitor before stopping.
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// The metric early stopping watches (val_loss, val_accuracy, val_mae, loss, ...).
    #[arg(long, default_value = "val_loss")]
    monitor: String,
    /// Divide the learning rate by 10 when --monitor has not improved for
    /// --reduce-lr-patience epochs (Keras's ReduceLROnPlateau).
    #[arg(long)]
    reduce_lr_on_plateau: bool,
    /// Epochs without improvement before the learning rate is reduced (with
    /// --reduce-lr-on-plateau; fewer than --patience, or early stopping ends the run first).
    #[arg(long, default_value_t = 5)]
    reduce_lr_patience: usize,
    /// Validate on this file (a CSV with the same columns, or an .npz with x and y) instead
    /// of a split of --data.
    #[arg(long, conflicts_with = "validation_split")]
    validation_data: Option<PathBuf>,
    /// Fraction of --data held out for validation, drawn with --seed (0: none).
    #[arg(long, default_value_t = 0.1)]
    validation_split: f32,
    /// Seeds the initial weights, the validation split and the shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto (a hardware GPU, else the CPU executor), cpu, or GPU adapters: best, all, vulkan,
    /// gl, discrete, indices like 0,2.
    #[arg(long, default_value = "auto")]
    adapter: String,
    /// Neither read nor write the kernel tuning decisions kept in ~/.cache/wgtrain.
    #[arg(long)]
    no_tuning_cache: bool,
    /// Where to save the model (safetensors, with its preprocessing).
    #[arg(long)]
    save: PathBuf,
    /// Write a JSON summary here.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Write the per-epoch history here (.csv, or .json).
    #[arg(long)]
    history: Option<PathBuf>,
    /// Draw the per-epoch curves here (.svg).
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(args: FitArgs) -> Result<(), Error> {
    if let Some(path) = &args.plot {
        crate::plot::check_plot_path(path)?;
    }
    if !(0.0..1.0).contains(&args.dropout) {
        return Err(Error::Config(format!(
            "--dropout {}: a rate from 0 (none) up to but not including 1, such as 0.1",
            args.dropout
        )));
    }
    let (table, plan) = read_table(&args)?;
    let (train_rows, split_val) = split(&args, table.rows())?;
    let prep = preprocessing(&table, &train_rows, plan)?;
    let all = prep.dataset(&table)?;
    let train = all.subset(&train_rows)?;
    let val = match (&args.validation_data, split_val) {
        (Some(path), _) => Some(prep.dataset(&prep.schema.read_evaluate(path)?)?),
        (None, Some(rows)) if !rows.is_empty() => Some(all.subset(&rows)?),
        _ => None,
    };
    let outputs = plan.outputs(&prep.schema);
    let spec = task::network(prep.schema.width(), &args.hidden, args.dropout, args.seed, outputs);
    let backend = crate::evaluate::backend(&args.adapter)?;
    let choice = backend.resolve();
    match &backend {
        Backend::Auto => println!("executor: {choice}"),
        _ => println!("executor: {} (--adapter {})", choice.kind(), args.adapter),
    }
    let options = TrainerOptions {
        spec,
        loss: plan.loss,
        optimizer: Optimizer::adam(args.lr),
        batch_size: args.batch_size,
        epochs: args.epochs,
        seed: args.seed,
        validation_split: 0.0, // the split is made here, before the standardizer is fitted
        early_stopping: Some(
            EarlyStopping::new(args.monitor.as_str()).patience(args.patience).restore_best_weights(true),
        ),
        reduce_lr_on_plateau: args
            .reduce_lr_on_plateau
            .then(|| ReduceLrOnPlateau::new(args.monitor.as_str()).patience(args.reduce_lr_patience)),
        backend: choice.backend,
        tuning_cache: if args.no_tuning_cache { TuningCache::Disabled } else { TuningCache::User },
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(options)?;
    let devices = trainer.devices().join(", ");
    println!(
        "training {:?} on {devices} ({} training rows, {} validation rows)",
        trainer.spec().widths(),
        train.len(),
        val.as_ref().map_or(0, Dataset::len)
    );
    let report = train_with_progress(&mut trainer, &train, val.as_ref(), &prep)?;
    let model = trainer.model()?.with_preprocessing(prep.clone())?;
    model.save(&args.save)?;
    println!("saved the model to {}", args.save.display());
    let history = in_target_units(&report.history, &prep, plan.loss);
    write_outputs(&args, plan, &report, &history, &devices, train.len())
}

/// The kinds of file --data can be, by extension as `Schema::read_evaluate` tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Npz,
    Npy,
}

fn format(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npz") => Format::Npz,
        Some("npy") => Format::Npy,
        _ => Format::Csv,
    }
}

/// Reads the training table, the task decided by `task::plan`, and prints what was read.
fn read_table(args: &FitArgs) -> Result<(Table, Plan), Error> {
    let (table, plan) = match format(&args.data) {
        Format::Csv => read_csv_table(args)?,
        numpy => read_numpy(args, numpy)?,
    };
    let how = if args.task.is_some() { "given" } else { "inferred" };
    let classes = table.schema().classes();
    let detail = if classes.is_empty() { String::new() } else { format!(", {} classes", classes.len()) };
    println!("task: {} ({how}{detail}), loss: {:?}", plan.task.name(), plan.loss);
    Ok((table, plan))
}

/// A CSV: the target columns by --target; a file whose target was inferred as a kind the plan
/// trains differently is read again as that kind.
fn read_csv_table(args: &FitArgs) -> Result<(Table, Plan), Error> {
    let data = &args.data;
    if args.target.is_empty() {
        return Err(Error::file(
            data,
            "--target is required for a CSV: name the target column(s) by header, such as \
             --target price (NumPy input, .npz or .npy, needs none)",
        ));
    }
    if args.target_data.is_some() {
        return Err(Error::file(
            data,
            "--target-data goes with --data x.npy; for a CSV, name the target column with --target",
        ));
    }
    let mut options = CsvOptions::new("")
        .targets(args.target.iter().cloned())
        .categorical(args.categorical.iter().cloned())
        .drop_missing(args.drop_missing);
    options.target_kind = args.task.map(Task::kind);
    let mut table = read_csv(&args.data, &options)?;
    println!("{}: {}", args.data.display(), table.report());
    let plan = task::plan(table.schema().target_kind(), args.loss)?;
    if table.schema().target_kind() != plan.read_as {
        table = read_csv(&args.data, &options.target_kind(plan.read_as))?;
    }
    Ok((table, plan))
}

/// NumPy arrays: an `.npz` with `x` and `y`, or `x.npy` with `--target-data y.npy`. Arrays
/// carry no names and no missing cells, so the CSV-only flags are refused by name, and the
/// target's kind is `y`'s dtype (`read_npz`): a --task that would train it as another kind is
/// refused rather than guessed at (the library reads arrays by dtype only).
fn read_numpy(args: &FitArgs, format: Format) -> Result<(Table, Plan), Error> {
    let data = &args.data;
    let refuse = |why: &str| Err(Error::file(data, why.to_string()));
    if !args.target.is_empty() {
        return refuse(
            "--target names CSV columns; a NumPy file's target is its array y (named y, or y0, y1, \
             ... for a 2-D y): leave --target out",
        );
    }
    if !args.categorical.is_empty() {
        return refuse(
            "--categorical names CSV columns; NumPy features are numbers already: one-hot encode \
             them in NumPy, or give a CSV",
        );
    }
    if args.drop_missing {
        return refuse(
            "--drop-missing is for CSV cells; NumPy arrays have no missing cells (NaN is refused): \
             drop those rows in NumPy",
        );
    }
    let table = match (format, &args.target_data) {
        (Format::Npz, None) => read_npz(data)?,
        (Format::Npz, Some(_)) => {
            return refuse("--target-data goes with --data x.npy; an .npz holds the target as its array y")
        }
        (_, Some(y)) => read_npy(data, y)?,
        (_, None) => {
            return refuse(
                "a .npy holds one array, the features x: give the target with --target-data y.npy, \
                 or both in an .npz (numpy.savez(path, x=..., y=...))",
            )
        }
    };
    println!("{}: {}", data.display(), table.report());
    let found = table.schema().target_kind();
    if let Some(task) = args.task.filter(|t| t.kind() != found) {
        let given = task.to_possible_value().map_or("?".into(), |v| v.get_name().to_string());
        return Err(Error::file(
            args.target_data.as_deref().unwrap_or(data),
            format!(
                "--task {given}: y reads as {}, and NumPy input trains as its dtype says (1-D \
                 integer: classify, binary for two classes; 2-D integer 0/1: multilabel; float: \
                 regress); leave --task out, or convert y (y.astype('float32') to regress, \
                 y.astype('int64') to classify)",
                table.report().inferred_kind.as_deref().unwrap_or(found.as_str()),
            ),
        ));
    }
    if let (Some(loss), false) = (args.loss, found == TargetKind::Values) {
        let given = loss.to_possible_value().map_or("?".into(), |v| v.get_name().to_string());
        return Err(Error::file(
            args.target_data.as_deref().unwrap_or(data),
            format!(
                "--loss {given} is a regression loss, but y reads as {}; leave --loss out, or \
                 save y as float (y.astype('float32')) to regress",
                table.report().inferred_kind.as_deref().unwrap_or(found.as_str()),
            ),
        ));
    }
    Ok((table, task::plan(found, args.loss)?))
}

/// The training rows and, without --validation-data, the validation rows of the seeded split.
fn split(args: &FitArgs, rows: usize) -> Result<(Vec<u32>, Option<Vec<u32>>), Error> {
    if args.validation_data.is_some() || args.validation_split == 0.0 {
        return Ok(((0..rows as u32).collect(), None));
    }
    let split = validation_split(rows, args.validation_split, args.seed)?;
    Ok((split.train, Some(split.val)))
}

/// Standardizers fitted on the training rows: every feature, and a one-column regression
/// target (its scale would otherwise slow Adam's start; several columns are left as they are,
/// so that the metrics in target units stay exact; so is a Huber target, whose delta is in
/// the target's units).
fn preprocessing(table: &Table, train_rows: &[u32], plan: Plan) -> Result<Preprocessing, Error> {
    let features = Standardizer::fit(table.features(), table.width(), train_rows)?;
    let target = match table.target() {
        Some(Target::Values(values))
            if plan.task == Task::Regress
                && table.schema().outputs() == 1
                && !matches!(plan.loss, Loss::Huber { .. }) =>
        {
            Some(Standardizer::fit(values, 1, train_rows)?)
        }
        _ => None,
    };
    Ok(Preprocessing { schema: table.schema().clone(), features: Some(features), target })
}

fn train_with_progress(
    trainer: &mut Trainer,
    train: &Dataset,
    val: Option<&Dataset>,
    prep: &Preprocessing,
) -> Result<FitReport, Error> {
    let loss = trainer.options().loss;
    let progress = Progress::new();
    let report = trainer.fit(train, val, |event| match event {
        TrainEvent::Progress { epoch, steps_done, steps, samples_per_second } => {
            progress.steps(*epoch, *steps_done, *steps, *samples_per_second)
        }
        TrainEvent::EpochEnd { record, decision } => {
            let mut shown = record.clone();
            shown.metrics = prep.metrics_in_target_units(loss, &record.metrics);
            progress.epoch_end(&shown, *decision);
        }
        TrainEvent::LearningRateReduced { epoch, monitor, old_lr, new_lr, .. } => progress.say(format!(
            "epoch {:>2}: {monitor} stopped improving, learning rate {old_lr:e} -> {new_lr:e}",
            epoch + 1
        )),
    })?;
    progress.finish();
    match (&report.stop_message, report.stopped_epoch) {
        // The library's sentence quotes the monitored value in model units, which for a
        // standardized target are not the target's: say it without the value then.
        (Some(_), Some(stopped)) if prep.target.is_some() => println!(
            "stopped early after epoch {}: {} stopped improving (best at epoch {})",
            stopped + 1,
            trainer_monitor(trainer),
            report.best_epoch.map_or("-".into(), |e| (e + 1).to_string())
        ),
        (Some(m), _) => println!("stopped early: {m}"),
        (None, _) => println!("ran all {} epochs", report.epochs_run),
    }
    if let Some(e) = report.restored_epoch {
        println!("restored the weights of epoch {} (best {})", e + 1, trainer_monitor(trainer));
    }
    Ok(report)
}

fn trainer_monitor(trainer: &Trainer) -> String {
    trainer.options().early_stopping.as_ref().map_or("epoch".into(), |es| es.monitor().name().to_string())
}

/// The history with every metric in the target's units.
fn in_target_units(history: &History, prep: &Preprocessing, loss: Loss) -> History {
    let mut out = history.clone();
    for record in &mut out.epochs {
        record.metrics = prep.metrics_in_target_units(loss, &record.metrics);
    }
    out
}

fn write_outputs(
    args: &FitArgs,
    plan: Plan,
    report: &FitReport,
    history: &History,
    devices: &str,
    samples: usize,
) -> Result<(), Error> {
    if let Some(path) = &args.history {
        if path.extension().is_some_and(|e| e == "json") {
            history.write_json(path)?
        } else {
            history.write_csv(path)?
        }
    }
    if let Some(path) = &args.plot {
        let marks = PlotMarks { best_epoch: report.best_epoch, stopped_epoch: report.stopped_epoch };
        plot_history(path, history, &marks)?;
        println!("drew the curves in {}", path.display());
    }
    if let Some(path) = &args.summary_json {
        let mut seconds: Vec<f64> = history.epochs.iter().map(|e| e.seconds).collect();
        seconds.sort_by(f64::total_cmp);
        let median = seconds.get(seconds.len() / 2).copied().unwrap_or(0.0);
        // The metrics of the epoch whose weights were kept: the restored one, else the last.
        let kept = report.restored_epoch.and_then(|e| history.epochs.get(e)).or(history.epochs.last());
        let mut summary = Map::new();
        summary.insert("task".into(), json!(plan.task.name()));
        summary.insert("loss_function".into(), json!(plan.loss));
        if let Some(record) = kept {
            for (name, value) in record.metrics.iter() {
                summary.insert(name.into(), json!(value));
            }
        }
        summary.insert("epochs_run".into(), json!(report.epochs_run));
        summary.insert("stopped_epoch".into(), json!(report.stopped_epoch));
        summary.insert("best_epoch".into(), json!(report.best_epoch));
        summary.insert("seconds_per_epoch".into(), json!(median));
        summary.insert("samples".into(), json!(samples));
        summary.insert("adapter".into(), json!(devices));
        crate::evaluate::write_json(path, Value::Object(summary))?;
    }
    Ok(())
}
