//! `wgtrain evaluate`: a saved model's metrics on a CSV that has the target column, read with
//! the model's saved encoding (columns by name, in any order) and reported in the target's
//! units. Runs on the CPU reference by default, so that the numbers are the same everywhere.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Map, Value};
use wgtrain::{AdapterSelection, Backend, Error, Model, Trainer, TrainerOptions};

#[derive(Args)]
pub struct EvaluateArgs {
    /// A model saved by `wgtrain fit`.
    #[arg(long)]
    model: PathBuf,
    /// The file to measure on: a CSV with the model's feature columns and its target
    /// column(s), or an .npz with arrays x and y.
    #[arg(long)]
    data: PathBuf,
    /// cpu (the default: the same numbers on every machine), auto, or GPU adapters.
    #[arg(long, default_value = "cpu")]
    adapter: String,
    /// Write a JSON summary here.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

pub fn run(args: EvaluateArgs) -> Result<(), Error> {
    let model = Model::load(&args.model)?;
    let prep = model.preprocessing().ok_or_else(|| {
        Error::file(
            &args.model,
            "the model has no table encoding (trained on arrays, as the MNIST demo's); evaluate \
             models saved by `wgtrain fit`",
        )
    })?;
    let data = prep.dataset(&prep.schema.read_evaluate(&args.data)?)?;
    let options = TrainerOptions {
        spec: model.spec().clone(),
        loss: model.loss(),
        backend: backend(&args.adapter)?.resolve().backend,
        validation_split: 0.0,
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::with_parameters(options, model.parameters())?;
    let evaluation = trainer.evaluate(&data)?;
    let metrics = prep.metrics_in_target_units(model.loss(), &evaluation.metrics);
    let shown: Vec<String> = metrics.iter().map(|(name, v)| format!("{name} {v:.4}")).collect();
    println!("{}: {} ({} rows)", args.data.display(), shown.join(" "), evaluation.samples);
    if let Some(path) = &args.summary_json {
        let mut summary = Map::new();
        // The task the model was fitted for, as `fit` named it (crate::task::plan).
        let task = crate::task::plan(prep.schema.target_kind(), None).map_or("regress", |p| p.task.name());
        summary.insert("task".into(), json!(task));
        summary.insert("loss_function".into(), json!(model.loss()));
        for (name, value) in metrics.iter() {
            summary.insert(name.into(), json!(value));
        }
        summary.insert("samples".into(), json!(evaluation.samples));
        summary.insert("adapter".into(), json!(trainer.devices().join(", ")));
        write_json(path, Value::Object(summary))?;
    }
    Ok(())
}

/// `--adapter`: auto, cpu, or a GPU adapter selection (as the MNIST demo reads it).
pub fn backend(adapter: &str) -> Result<Backend, Error> {
    Ok(match adapter {
        "auto" => Backend::Auto,
        "cpu" => Backend::Cpu,
        other => {
            let selection: AdapterSelection = other.parse()?;
            Backend::Gpu { selection, replicas_per_adapter: 1 }
        }
    })
}

/// A summary file, pretty-printed, keys in the order inserted.
pub fn write_json(path: &Path, value: Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(&value).map_err(|e| Error::file(path, e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}
