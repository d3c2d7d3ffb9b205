//! The tabular recipe that `examples/tabular.rs` runs and `tests/tabular_tasks.rs` checks, the
//! same one as `benches/torch_tabular.py` and `benches/keras_tabular.py`: split a CSV 80/20 into
//! two files (so that every framework reads the very same rows), standardize the features on
//! the training file, hold out 10 % of it (seeded) for early stopping on `val_loss` with the
//! best weights restored, Adam 1e-3, a ReLU MLP, and score the test file.
//!
//! Kept here rather than in the library: it is a recipe, a dozen calls to the public API.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use wgtrain::data::{read_csv, validation_split, CsvOptions, Dataset, Standardizer, TargetKind};
use wgtrain::gpu::{self, AdapterSelection};
use wgtrain::{Activation, Backend, EarlyStopping, Error, Loss, Network, Optimizer, Trainer, TrainerOptions};

/// What the target is learnt as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Class labels (text or whole numbers), scored by accuracy.
    Classify,
    /// Two classes on one sigmoid output, scored by binary accuracy.
    Binary,
    /// Real values, scored by R².
    Regress,
}

impl Task {
    /// `classify`, `binary` or `regress`, as `torch_tabular.py --task` spells them.
    pub fn parse(s: &str) -> Result<Task, Error> {
        match s {
            "classify" => Ok(Task::Classify),
            "binary" => Ok(Task::Binary),
            "regress" => Ok(Task::Regress),
            other => Err(Error::Config(format!("--task {other}: use classify, binary or regress"))),
        }
    }

    /// The loss trained with: the softmax over the classes, the sigmoid on one output for
    /// two classes, the mean squared error for values.
    pub fn loss(self) -> Loss {
        match self {
            Task::Classify => Loss::SoftmaxCrossEntropy,
            Task::Binary => Loss::SigmoidCrossEntropy,
            Task::Regress => Loss::MeanSquaredError,
        }
    }

    /// How the CSV reader encodes the target: classes (even two, for `classify`), two
    /// classes, or values.
    fn target_kind(self) -> TargetKind {
        match self {
            Task::Classify => TargetKind::Classes,
            Task::Binary => TargetKind::Binary,
            Task::Regress => TargetKind::Values,
        }
    }

    /// The held-out metric reported: `accuracy`, `binary_accuracy` or `r2`.
    pub fn metric(self) -> &'static str {
        match self {
            Task::Classify => "accuracy",
            Task::Binary => "binary_accuracy",
            Task::Regress => "r2",
        }
    }
}

/// Everything but the data and the backend; the defaults are the peers' defaults.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub hidden: Vec<usize>,
    pub batch: usize,
    pub patience: usize,
    pub epochs: usize,
    pub seed: u64,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe { hidden: vec![64, 64], batch: 32, patience: 10, epochs: 200, seed: 0 }
    }
}

/// What one run gives: the test metric, and the time an epoch took.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The test metric ([`Task::metric`]) of the weights kept.
    pub quality: f32,
    pub epochs_run: usize,
    /// Median over the epochs after the first (the first pays for warm-up), as the peers do;
    /// an epoch's time includes its validation pass.
    pub seconds_per_epoch: f64,
    /// Rows trained on: the training file less the 10 % held out (rounded; the peers floor).
    pub rows: usize,
    /// The devices trained on, e.g. `["llvmpipe (LLVM 15.0.6, 256 bits) (vulkan, cpu)"]`.
    pub devices: Vec<String>,
}

/// Writes the rows of `data` to `dir/train.csv` and `dir/test.csv`, 80/20 by `split_seed`
/// ([`validation_split`]), each with the header and the rows in file order; returns the paths.
pub fn write_split(data: &Path, split_seed: u64, dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let mut reader = csv::Reader::from_path(data).map_err(|e| csv_error(data, e))?;
    let header = reader.headers().map_err(|e| csv_error(data, e))?.clone();
    let rows: Vec<csv::StringRecord> =
        reader.records().collect::<Result<_, _>>().map_err(|e| csv_error(data, e))?;
    let split = validation_split(rows.len(), 0.2, split_seed)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let write = |name: &str, indices: &[u32]| -> Result<PathBuf, Error> {
        let path = dir.join(name);
        let mut w = csv::Writer::from_path(&path).map_err(|e| csv_error(&path, e))?;
        w.write_record(&header).map_err(|e| csv_error(&path, e))?;
        for &i in indices {
            w.write_record(&rows[i as usize]).map_err(|e| csv_error(&path, e))?;
        }
        w.flush().map_err(|e| Error::io(&path, e))?;
        Ok(path)
    };
    Ok((write("train.csv", &split.train)?, write("test.csv", &split.val)?))
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

/// The training and test files as data sets, the test file encoded with the training file's
/// schema and both standardized with the training file's feature statistics.
pub fn load(train: &Path, test: &Path, target: &str, task: Task) -> Result<(Dataset, Dataset), Error> {
    let mut train_table = read_csv(train, &CsvOptions::new(target).target_kind(task.target_kind()))?;
    let mut test_table = train_table.schema().read_evaluate(test)?;
    let all: Vec<u32> = (0..train_table.rows() as u32).collect();
    let scaler = Standardizer::fit(train_table.features(), train_table.width(), &all)?;
    for table in [&mut train_table, &mut test_table] {
        scaler.apply(table.features_mut())?;
    }
    Ok((train_table.to_dataset()?, test_table.to_dataset()?))
}

/// The backend named `cpu`, `lavapipe` (Mesa's software Vulkan), `gl` (the first GL adapter)
/// or `vulkan` (the first Vulkan adapter), one device.
pub fn backend(name: &str) -> Result<Backend, Error> {
    if name == "cpu" {
        return Ok(Backend::Cpu);
    }
    let adapters = gpu::list_adapters();
    let found = match name {
        "lavapipe" => adapters.iter().find(|a| a.backend == "vulkan" && a.device_type == "cpu"),
        "gl" | "vulkan" => adapters.iter().find(|a| a.backend == name),
        other => return Err(Error::Config(format!("--backend {other}: use cpu, lavapipe, gl or vulkan"))),
    };
    let adapter = found.ok_or_else(|| {
        let seen: Vec<String> = adapters.iter().map(|a| a.label()).collect();
        Error::Config(format!("--backend {name}: no such adapter here (wgpu found {seen:?})"))
    })?;
    Ok(Backend::Devices(gpu::open(&AdapterSelection::Indices(vec![adapter.index]), 1)?))
}

/// Trains `train` by `recipe` on `backend` and scores `test`.
pub fn train_and_score(
    train: &Dataset,
    test: &Dataset,
    task: Task,
    recipe: &Recipe,
    backend: Backend,
) -> Result<Outcome, Error> {
    let outputs = match task {
        Task::Classify => train.classes().max(test.classes()),
        Task::Binary | Task::Regress => 1,
    };
    let mut sizes = vec![train.features()];
    sizes.extend(&recipe.hidden);
    sizes.push(outputs);
    let options = TrainerOptions {
        spec: Network::classifier(&sizes, Activation::Relu),
        loss: task.loss(),
        optimizer: Optimizer::adam(1e-3),
        batch_size: recipe.batch,
        epochs: recipe.epochs,
        seed: recipe.seed,
        validation_split: 0.1,
        early_stopping: Some(
            EarlyStopping::new("val_loss").patience(recipe.patience).restore_best_weights(true),
        ),
        backend,
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(options)?;
    let report = trainer.fit(train, None, |_| {})?;
    let mut seconds: Vec<f64> = report.history.epochs.iter().skip(1).map(|e| e.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let eval = trainer.evaluate(test)?;
    let quality = eval
        .get(task.metric())
        .ok_or_else(|| Error::Config(format!("the evaluation reports no {}", task.metric())))?;
    Ok(Outcome {
        quality,
        epochs_run: report.epochs_run,
        seconds_per_epoch: seconds.get(seconds.len() / 2).copied().unwrap_or(0.0),
        rows: train.len() - (train.len() as f64 * 0.1).round() as usize,
        devices: trainer.devices(),
    })
}
