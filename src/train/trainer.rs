//! [`Trainer`]: the epoch loop on top of an [`Executor`] (the CPU, one device, or mirrored
//! devices: the trainer never asks which). It shuffles, runs an epoch on the executor, turns
//! the sums into metrics by name, asks early stopping and ReduceLROnPlateau (`lr_control.rs`),
//! records history, writes checkpoints, reports events, and restores the best weights at the
//! end.

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::callbacks::early_stopping::{Decision, EarlyStopping};
use crate::callbacks::history::{EpochRecord, History};
use crate::callbacks::metrics::{pass_metrics, EpochMetrics, VAL_PREFIX};
use crate::callbacks::reduce_lr::ReduceLrOnPlateau;
use crate::checkpoint::{save_checkpoint, Model, Prediction};
use crate::cpu::CpuExecutor;
use crate::data::{shuffled, validation_split, Dataset, Targets};
use crate::error::{Error, Result};
use crate::exec::{EpochPlan, EpochSums, Executor, ParallelStats, ValSource};
use crate::gpu::{self, DeviceExecutor, Gpu};
use crate::parallel::Mirrored;
use crate::spec::{Loss, Network};
use crate::train::events::{CancelToken, Evaluation, FitReport, TrainEvent};
use crate::train::options::{Backend, TrainerOptions};

/// Trains one model. Build it from [`TrainerOptions`], then [`Trainer::fit`].
pub struct Trainer {
    pub(super) options: TrainerOptions,
    pub(super) executor: Box<dyn Executor>,
    pub(super) cancel: CancelToken,
    /// Optimizer steps taken so far (Adam's t).
    pub(super) step: u64,
    /// Epochs completed so far.
    pub(super) epoch: usize,
    pub(super) rng: Pcg64Mcg,
    pub(super) history: History,
    pub(super) early_stopping: Option<EarlyStopping>,
    /// The base learning rate the executor trains with (see `lr_control.rs`).
    pub(super) lr: f32,
    pub(super) reduce_lr: Option<ReduceLrOnPlateau>,
}

impl Trainer {
    /// Validates `options`, initialises the weights from the seed and opens the backend.
    pub fn new(options: TrainerOptions) -> Result<Self> {
        options.validate()?;
        let params = options.spec.layout().init(options.init, options.seed);
        Self::with_parameters(options, &params)
    }

    /// Like [`Trainer::new`] with given flat parameters (laid out as `options.spec.layout()`).
    pub fn with_parameters(options: TrainerOptions, params: &[f32]) -> Result<Self> {
        options.validate()?;
        if let Some(bad) = params.iter().position(|p| !p.is_finite()) {
            return Err(Error::Data(format!("parameter {bad} is not finite")));
        }
        let mut executor = open_executor(&options, params)?;
        let lr = options.optimizer.lr();
        executor.set_learning_rate(lr, options.lr_schedule)?;
        // The shuffle stream is derived from the seed but differs from the init stream.
        let rng = Pcg64Mcg::seed_from_u64(options.seed ^ 0x5eed_5eed_5eed_5eed);
        let early_stopping = options.early_stopping.clone();
        let reduce_lr = options.reduce_lr_on_plateau.clone();
        Ok(Trainer {
            options,
            executor,
            cancel: CancelToken::new(),
            step: 0,
            epoch: 0,
            rng,
            history: History::default(),
            early_stopping,
            lr,
            reduce_lr,
        })
    }

    /// A token that cancels this trainer's `fit` from another thread.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// The options it was built with.
    pub fn options(&self) -> &TrainerOptions {
        &self.options
    }

    /// The model's description.
    pub fn spec(&self) -> &Network {
        &self.options.spec
    }

    /// Names of the devices training runs on (`cpu` for the CPU executor).
    pub fn devices(&self) -> Vec<String> {
        self.executor.devices()
    }

    /// Dispatches per training step (0 on the CPU executor).
    pub fn dispatches_per_step(&self) -> usize {
        self.executor.dispatches_per_step()
    }

    /// Data-parallel timing (None unless training on several devices).
    pub fn parallel_stats(&self) -> Option<ParallelStats> {
        self.executor.parallel_stats()
    }

    /// Flat parameters of every replica (one entry per device; tests check they agree).
    pub fn replica_parameters(&self) -> Result<Vec<Vec<f32>>> {
        self.executor.replica_parameters()
    }

    /// The history of every epoch run so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The current flat parameters (layout of `spec().layout()`).
    pub fn parameters(&self) -> Result<Vec<f32>> {
        self.executor.parameters()
    }

    /// The metrics early stopping and ReduceLROnPlateau watch must be ones this training
    /// reports: a misspelt name would otherwise never act. A `val_` metric without validation
    /// rows is allowed (Keras warns and carries on): nothing is seen, so nothing happens.
    fn check_monitor(&self) -> Result<()> {
        let watched = [
            ("early stopping", self.early_stopping.as_ref().map(|es| es.monitor())),
            ("reduce_lr_on_plateau", self.reduce_lr.as_ref().map(|r| r.monitor())),
        ];
        let base = self.options.loss.metric_names();
        let known: Vec<String> = base
            .iter()
            .map(|n| n.to_string())
            .chain(base.iter().map(|n| format!("{VAL_PREFIX}{n}")))
            .collect();
        for (who, monitor) in watched {
            let Some(name) = monitor.map(|m| m.name()) else { continue };
            if !known.iter().any(|k| k == name) {
                return Err(Error::Config(format!(
                    "{who} monitors `{name}`, which this training does not report; it reports {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn check_data(&self, data: &Dataset, what: &str) -> Result<()> {
        let spec = &self.options.spec;
        if data.is_empty() {
            return Err(Error::Data(format!("the {what} set is empty")));
        }
        if data.features() != spec.inputs() {
            return Err(Error::Shape(format!(
                "the {what} set has {} features, the model takes {}",
                data.features(),
                spec.inputs()
            )));
        }
        check_targets(self.options.loss, data.targets(), spec.outputs(), what)
    }

    /// Trains on `train` for up to `options.epochs` epochs, validating on `validation` (or on
    /// a held-out `validation_split` of `train` when `None`), reporting through `on_event`.
    pub fn fit(
        &mut self,
        train: &Dataset,
        validation: Option<&Dataset>,
        mut on_event: impl FnMut(&TrainEvent),
    ) -> Result<FitReport> {
        self.check_data(train, "training")?;
        if let Some(v) = validation {
            self.check_data(v, "validation")?;
        }
        self.cancel.reset();
        let split = match validation {
            Some(_) => None,
            None if self.options.validation_split > 0.0 => {
                Some(validation_split(train.len(), self.options.validation_split, self.options.seed)?)
            }
            None => None,
        };
        let train_idx: Vec<u32> = match &split {
            Some(s) => s.train.clone(),
            None => (0..train.len() as u32).collect(),
        };
        let val = match (&split, validation) {
            (_, Some(v)) => ValSource::Data(v),
            (Some(s), None) if !s.val.is_empty() => ValSource::Split(&s.val),
            _ => ValSource::None,
        };
        self.check_monitor()?;
        self.executor.prepare(train, &train_idx, &val)?;
        // A resumed run whose early stopping had already stopped trains no further.
        let already_stopped = self.early_stopping.as_ref().is_some_and(|es| es.stopped_epoch().is_some());
        let mut decision = if already_stopped { Decision::Stop } else { Decision::Continue };
        while self.epoch < self.options.epochs && decision == Decision::Continue {
            let order = shuffled(&train_idx, &mut self.rng);
            let epoch = self.epoch;
            let start = std::time::Instant::now();
            let sums = self.run_epoch(train, &order, &val, epoch, &mut on_event)?;
            let seconds = start.elapsed().as_secs_f64();
            self.step += sums.steps as u64;
            self.epoch += 1;
            let mut metrics = EpochMetrics::new();
            pass_metrics(self.options.loss, &mut metrics, "", &sums.train);
            if let Some(val) = &sums.val {
                pass_metrics(self.options.loss, &mut metrics, VAL_PREFIX, val);
            }
            if let Some(es) = &mut self.early_stopping {
                decision = es.on_epoch_end(epoch, &metrics);
                if es.wants_snapshot() {
                    self.executor.snapshot_best()?;
                }
            }
            self.control_learning_rate(epoch, &mut metrics, &mut on_event)?;
            let record = EpochRecord::new(epoch, &metrics, seconds, order.len());
            self.history.push(record.clone());
            if let Some(dir) = self.options.checkpoint_dir.as_ref().filter(|_| self.executor.is_primary()) {
                save_checkpoint(dir, &self.state()?)?;
            }
            on_event(&TrainEvent::EpochEnd { record, decision });
        }
        let restored_epoch = self.early_stopping.as_ref().and_then(|es| es.restore_epoch());
        if restored_epoch.is_some() {
            self.executor.restore_best()?;
        }
        let es = self.early_stopping.as_ref();
        Ok(FitReport {
            history: self.history.clone(),
            epochs_run: self.epoch,
            stopped_epoch: es.and_then(|e| e.stopped_epoch()),
            stop_reason: es.and_then(|e| e.stop_reason()),
            stop_message: es.and_then(|e| e.stop_message()),
            best_epoch: es.and_then(|e| e.best_epoch()),
            restored_epoch,
        })
    }

    fn run_epoch(
        &mut self,
        train: &Dataset,
        order: &[u32],
        val: &ValSource<'_>,
        epoch: usize,
        on_event: &mut impl FnMut(&TrainEvent),
    ) -> Result<EpochSums> {
        let batch = self.options.batch_size;
        let steps = order.len().div_ceil(batch);
        let cancel = self.cancel.clone();
        let start = std::time::Instant::now();
        let mut hook = |done: usize| -> Result<()> {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            let samples = (done * batch).min(order.len()) as f64;
            on_event(&TrainEvent::Progress {
                epoch,
                steps_done: done,
                steps,
                samples_per_second: samples / secs,
            });
            Ok(())
        };
        let plan = EpochPlan { order, batch, first_step: self.step, eval_batch: self.options.eval_batch };
        self.executor.run_epoch(train, val, &plan, &mut hook)
    }

    /// One optimizer step on a batch given by the caller: `x: [rows, inputs]` (f32, already
    /// scaled) and one class index per row. Returns the batch's mean loss. Waits for the
    /// result. Every executor refuses the same bad batches with the same error, before any
    /// weight changes: a wrong shape, a label out of range, a NaN or infinite input.
    pub fn train_step(&mut self, x: &[f32], labels: &[u32]) -> Result<f32> {
        if self.options.loss != Loss::SoftmaxCrossEntropy {
            return Err(Error::Config(
                "train_step takes class labels: it steps the softmax cross-entropy only; train \
                 value targets with fit"
                    .into(),
            ));
        }
        let (inputs, classes) = (self.options.spec.inputs(), self.options.spec.outputs());
        let rows = labels.len();
        if rows == 0 || rows.checked_mul(inputs) != Some(x.len()) {
            return Err(Error::Shape(format!(
                "train_step needs x: [rows, {inputs}] and one label per row, got {} values and {rows} labels",
                x.len()
            )));
        }
        if let Some(r) = labels.iter().position(|&l| l as usize >= classes) {
            return Err(Error::Data(format!(
                "label {} of row {r} is not below the model's {classes} classes",
                labels[r]
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "input value {} at row {}, column {} is not finite",
                x[i],
                i / inputs,
                i % inputs
            )));
        }
        let t = self.step + 1;
        let sums = self.executor.train_step(x, labels, t)?;
        self.step = t;
        Ok(sums.means().0)
    }

    /// Class probabilities and labels for `x: [rows, inputs]` with the current weights
    /// (computed by the CPU reference from the weights read back once), as [`Model::predict`]
    /// gives them; a regression model's values come from [`Model::predict_values`] of
    /// [`Trainer::model`].
    pub fn predict(&self, x: &[f32]) -> Result<Prediction> {
        self.model()?.predict(x)
    }

    /// The current weights as a [`Model`] (to save, or to predict without a trainer).
    pub fn model(&self) -> Result<Model> {
        Ok(Model::new(self.options.spec.clone(), self.parameters()?)?.with_loss(self.options.loss))
    }

    /// Epochs completed so far (also those before a resume).
    pub fn epochs_completed(&self) -> usize {
        self.epoch
    }

    /// The loss's metrics ([`Loss::metric_names`]) of the current weights over `data`.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Evaluation> {
        self.check_data(data, "evaluation")?;
        let sums = self.executor.evaluate(data, self.options.eval_batch)?;
        let mut metrics = EpochMetrics::new();
        pass_metrics(self.options.loss, &mut metrics, "", &sums);
        Ok(Evaluation { metrics, samples: data.len() })
    }
}

/// Whether `targets` suit `loss` and a model of `outputs` outputs; the error names the set
/// (`what`) and says which loss or targets would.
fn check_targets(loss: Loss, targets: &Targets, outputs: usize, what: &str) -> Result<()> {
    let width = |have: usize, of: &str| {
        if have == outputs {
            Ok(())
        } else {
            Err(Error::Shape(format!(
                "the {what} set has {have} {of} per row, the model outputs {outputs}; give the \
                 last layer {have} outputs"
            )))
        }
    };
    match (loss, targets) {
        (Loss::SoftmaxCrossEntropy, Targets::Classes { classes, .. }) => {
            if *classes > outputs {
                return Err(Error::Shape(format!(
                    "the {what} set has {classes} classes, the model outputs {outputs}"
                )));
            }
            Ok(())
        }
        (Loss::SoftmaxCrossEntropy, _) => Err(Error::Config(format!(
            "the {what} set's targets are values, but the softmax cross-entropy trains on class \
             labels; use Loss::MeanSquaredError for value targets"
        ))),
        (Loss::SigmoidCrossEntropy, Targets::MultiHot { classes, .. }) => {
            width(*classes, "multi-hot classes")
        }
        (Loss::SigmoidCrossEntropy, Targets::Classes { classes: 2, .. }) => {
            if outputs != 1 {
                return Err(Error::Shape(format!(
                    "the {what} set's targets are binary labels, which the sigmoid cross-entropy \
                     reads with one output (the logit of label 1), but the model outputs \
                     {outputs}; give the last layer one output, or use Targets::MultiHot"
                )));
            }
            Ok(())
        }
        (Loss::SigmoidCrossEntropy, Targets::Classes { classes, .. }) => Err(Error::Config(format!(
            "the {what} set has {classes} classes, but the sigmoid cross-entropy trains on binary \
             labels (2 classes) or multi-hot rows; use Loss::SoftmaxCrossEntropy for one class \
             among {classes}, or Targets::MultiHot for several per row"
        ))),
        (Loss::SigmoidCrossEntropy, _) => Err(Error::Config(format!(
            "the {what} set's targets are values, but the sigmoid cross-entropy trains on 0/1 \
             targets; use Targets::MultiHot, or a regression loss for values"
        ))),
        (loss, Targets::Values { outputs: have, .. }) if loss.is_regression() => {
            width(*have, "target values")
        }
        (loss, _) => {
            let kind =
                if matches!(targets, Targets::MultiHot { .. }) { "multi-hot classes" } else { "classes" };
            Err(Error::Config(format!(
                "the {what} set's targets are {kind}, but {} trains on values; use \
                 Loss::SoftmaxCrossEntropy for class targets or Loss::SigmoidCrossEntropy for \
                 multi-hot ones",
                loss.describe()
            )))
        }
    }
}

/// The executor `options.backend` asks for, holding `params`: the only place that knows
/// which kinds exist. [`Backend::Auto`] is resolved here, against the adapters of the machine.
fn open_executor(options: &TrainerOptions, params: &[f32]) -> Result<Box<dyn Executor>> {
    let max_rows = options.batch_size.max(options.eval_batch);
    let devices = |gpus: Vec<Gpu>| -> Result<Box<dyn Executor>> {
        // Every device of the trainer keeps its tuning decisions where the options say.
        let mut gpus: Vec<Gpu> =
            gpus.into_iter().map(|g| g.with_tuning_cache(options.tuning_cache.clone())).collect();
        match gpus.len() {
            0 => Err(Error::NoAdapter { detail: ": the device list is empty".into() }),
            1 => Ok(Box::new(DeviceExecutor::new(
                gpus.remove(0),
                &options.spec,
                options.optimizer,
                options.loss,
                params,
                max_rows,
            )?)),
            _ => {
                let mut mirrored =
                    Mirrored::new(gpus, &options.spec, options.optimizer, options.loss, params, max_rows)?;
                if let Some(w) = &options.replica_weights {
                    mirrored.set_weights(w.clone())?;
                }
                Ok(Box::new(mirrored))
            }
        }
    };
    match options.backend.resolve().backend {
        Backend::Cpu => {
            Ok(Box::new(CpuExecutor::new(&options.spec, options.optimizer, options.loss, params)?))
        }
        Backend::Gpu { selection, replicas_per_adapter } => {
            devices(gpu::open(&selection, replicas_per_adapter)?)
        }
        Backend::Devices(gpus) => devices(gpus),
        Backend::Auto => Err(Error::Config("the automatic backend did not resolve".into())),
        #[cfg(feature = "mpi")]
        Backend::Mpi { group, local } => super::distributed::open(options, &group, &local, params),
    }
}
