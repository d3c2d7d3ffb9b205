//! A trainer's full state and back: checkpoints ([`Trainer::state`], [`Trainer::resume`],
//! [`Trainer::from_state`]), and training on a thread of its own for async applications.

use crate::checkpoint::{load_checkpoint, TrainingState};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::ExecutorState;
use crate::train::background::{self, Background};
use crate::train::events::{Evaluation, FitReport, TrainEvent};
use crate::train::options::TrainerOptions;
use crate::train::trainer::Trainer;

impl Trainer {
    /// The full training state, for a checkpoint. Reads weights and moments back (waits).
    pub fn state(&self) -> Result<TrainingState> {
        let ExecutorState { params, m, v, best } = self.executor.read_state()?;
        let has_snapshot = self.early_stopping.as_ref().is_some_and(|es| es.restore_epoch().is_some());
        Ok(TrainingState {
            spec: self.options.spec.clone(),
            optimizer: self.options.optimizer,
            params,
            m,
            v,
            step: self.step,
            epoch: self.epoch,
            rng: self.rng.clone(),
            early_stopping: self.early_stopping.clone(),
            best_params: if has_snapshot { best } else { Vec::new() },
            history: self.history.clone(),
            learning_rate: self.lr,
            lr_schedule: self.options.lr_schedule,
            reduce_lr_on_plateau: self.reduce_lr.clone(),
        })
    }

    /// Continues from the checkpoint in `options.checkpoint_dir` if there is one, else starts
    /// fresh as [`Trainer::new`]. A corrupt checkpoint is an error, never silently ignored.
    pub fn resume(options: TrainerOptions) -> Result<Self> {
        let state = match &options.checkpoint_dir {
            Some(dir) => load_checkpoint(dir)?,
            None => None,
        };
        match state {
            Some(state) => Trainer::from_state(options, state),
            None => Trainer::new(options),
        }
    }

    /// A trainer that continues from `state` exactly where it was saved. The spec, optimizer
    /// and learning-rate schedule of `options` must match the state's. The state's early
    /// stopping replaces that of `options`, and so does its ReduceLROnPlateau when it has
    /// one (a state without one keeps that of `options`, starting afresh).
    pub fn from_state(options: TrainerOptions, state: TrainingState) -> Result<Self> {
        if options.spec != state.spec {
            return Err(Error::Config(format!(
                "the checkpoint is of model {:?}, not {:?}",
                state.spec.widths(),
                options.spec.widths()
            )));
        }
        if options.optimizer != state.optimizer {
            return Err(Error::Config("the checkpoint was trained with other optimizer settings".into()));
        }
        if options.lr_schedule != state.lr_schedule {
            return Err(Error::Config(format!(
                "the checkpoint was trained with lr_schedule {:?}, not {:?}",
                state.lr_schedule, options.lr_schedule
            )));
        }
        let mut t = Trainer::with_parameters(options, &state.params)?;
        let len = state.params.len();
        if state.m.len() != len
            || state.v.len() != len
            || !(state.best_params.is_empty() || state.best_params.len() == len)
        {
            return Err(Error::Shape("checkpoint tensors do not match the model's size".into()));
        }
        let exec_state = ExecutorState {
            params: state.params.clone(),
            m: state.m.clone(),
            v: state.v.clone(),
            best: state.best_params.clone(),
        };
        t.executor.write_state(&exec_state, state.step)?;
        t.step = state.step;
        t.epoch = state.epoch;
        t.rng = state.rng;
        t.early_stopping = state.early_stopping;
        t.executor.set_learning_rate(state.learning_rate, state.lr_schedule)?;
        t.lr = state.learning_rate;
        if state.reduce_lr_on_plateau.is_some() {
            t.reduce_lr = state.reduce_lr_on_plateau;
        }
        t.history = state.history;
        Ok(t)
    }

    /// [`Trainer::fit`] for async applications: training runs on its own thread and the
    /// future yields the trainer back with the report. `on_event` runs on that thread.
    pub fn fit_async(
        mut self,
        train: Dataset,
        validation: Option<Dataset>,
        mut on_event: impl FnMut(&TrainEvent) + Send + 'static,
    ) -> Background<(Trainer, Result<FitReport>)> {
        background::spawn(move || {
            let report = self.fit(&train, validation.as_ref(), &mut on_event);
            (self, report)
        })
    }

    /// [`Trainer::evaluate`] for async applications (see [`Trainer::fit_async`]).
    pub fn evaluate_async(mut self, data: Dataset) -> Background<(Trainer, Result<Evaluation>)> {
        background::spawn(move || {
            let result = self.evaluate(&data);
            (self, result)
        })
    }
}
