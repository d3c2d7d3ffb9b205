//! Early stopping with the exact decisions of Keras 3's `EarlyStopping` callback
//! (`keras/src/callbacks/early_stopping.py`, the version whose `on_train_begin` sets
//! `best = None`), plus three stopping rules from PyTorch Lightning's (`check_finite`,
//! `stopping_threshold`, `divergence_threshold`).
//!
//! Why copy Keras exactly: people tune `patience`, `min_delta` and `baseline` with Keras and expect
//! the same run length here; a near copy stops one epoch apart and nobody can tell why. The type is
//! host-only logic (no GPU), serializable so that a resumed run makes the same decisions.
//!
//! # One epoch, in order
//! 1. No monitored value (e.g. no validation set), or `epoch < start_from_epoch`: `Continue`,
//!    nothing recorded (Keras warns and returns; a library does not print).
//! 2. `check_finite` and the value is NaN or infinite: `Stop` ([`StopReason::NonFinite`]), before
//!    the Keras bookkeeping, so a NaN never becomes the best value nor a snapshot (Lightning checks
//!    this first too). With `check_finite(false)` a NaN goes through Keras's rules unchanged.
//! 3. Keras's bookkeeping, line for line: take a snapshot the first time a value is seen; count the
//!    epoch (`wait += 1`); on an improvement over the best so far record it and snapshot, and reset
//!    `wait` only if the value also beats `baseline`; otherwise patience is exhausted when
//!    `wait >= patience && epoch > 0`.
//! 4. Lightning's thresholds, in Lightning's order: `stopping_threshold` (value strictly better
//!    than it), then `divergence_threshold` (value strictly worse than it). Either stops at once,
//!    also at epoch 0, and wins over patience as the reported reason.
//! 5. Patience exhausted: `Stop` ([`StopReason::Patience`]).
//!
//! A value improves on a reference `r` when `current - min_delta > r` (max) or
//! `current + min_delta < r` (min), `min_delta` taken as its absolute value. Keras starts with no
//! best (`None`), so the first value seen always improves; it does not start from `baseline`.
//! Keras subtracts in double precision and compares in `float32`; so do we, which is why
//! `min_delta` is an `f64`.
//!
//! # Snapshots
//! Check [`EarlyStopping::wants_snapshot`] after every call, also when it returns `Stop`: it says
//! to copy the current weights as the best ones. At the end of training, whoever ended it, restore
//! the snapshot when [`EarlyStopping::restore_epoch`] is `Some`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::callbacks::history::json_float;
pub use crate::callbacks::metrics::EpochMetrics;
pub use crate::callbacks::monitor::{Mode, Monitor};
use crate::error::{Error, Result};

/// What [`EarlyStopping::on_epoch_end`] tells the training loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Train another epoch (if any are left).
    Continue,
    /// End training after this epoch; the reason is in [`EarlyStopping::stop_reason`].
    Stop,
}

/// Why early stopping ended training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `patience` epochs without an improvement (Keras's rule).
    Patience,
    /// The monitored value was NaN or infinite (`check_finite`).
    NonFinite,
    /// The monitored value got better than `stopping_threshold`.
    StoppingThreshold,
    /// The monitored value got worse than `divergence_threshold`.
    DivergenceThreshold,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Patience => "the monitored metric stopped improving for `patience` epochs",
            StopReason::NonFinite => "the monitored metric became NaN or infinite",
            StopReason::StoppingThreshold => "the monitored metric reached the stopping threshold",
            StopReason::DivergenceThreshold => "the monitored metric crossed the divergence threshold",
        })
    }
}

/// What changes from epoch to epoch; [`EarlyStopping::reset`] clears it (Keras's
/// `on_train_begin`), the settings stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// Epochs counted since the last reset of the wait (Keras's `wait`).
    wait: usize,
    #[serde(with = "json_float::option")]
    best: Option<f32>,
    best_epoch: Option<usize>,
    /// The epoch whose weights the snapshot holds (Keras's `best_weights` is not None).
    snapshot_epoch: Option<usize>,
    wants_snapshot: bool,
    stopped_epoch: Option<usize>,
    stop_reason: Option<StopReason>,
    /// The monitored value that stopped training, for [`EarlyStopping::stop_message`].
    #[serde(with = "json_float::option")]
    stop_value: Option<f32>,
}

/// Stops training when a monitored metric stops improving (Keras 3 semantics, see the module
/// docs). Build with [`EarlyStopping::new`] and the setters, call
/// [`on_epoch_end`](EarlyStopping::on_epoch_end) once per epoch with 0-based epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    /// Kept as given; its absolute value is used (Keras: `abs(min_delta)`).
    #[serde(with = "json_float")]
    min_delta: f64,
    mode: Mode,
    #[serde(with = "json_float::option")]
    baseline: Option<f32>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    check_finite: bool,
    #[serde(with = "json_float::option")]
    stopping_threshold: Option<f32>,
    #[serde(with = "json_float::option")]
    divergence_threshold: Option<f32>,
    progress: Progress,
}

impl Default for EarlyStopping {
    /// Keras's defaults (val_loss, patience 0, min_delta 0, auto, no baseline, no restore,
    /// start at epoch 0) plus Lightning's `check_finite = true`.
    fn default() -> Self {
        EarlyStopping {
            monitor: Monitor::val_loss(),
            patience: 0,
            min_delta: 0.0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            check_finite: true,
            stopping_threshold: None,
            divergence_threshold: None,
            progress: Progress::default(),
        }
    }
}

impl EarlyStopping {
    /// Keras's defaults, watching `monitor` (a [`Monitor`] or a metric name such as
    /// `"val_loss"`).
    pub fn new(monitor: impl Into<Monitor>) -> Self {
        EarlyStopping { monitor: monitor.into(), ..Self::default() }
    }

    /// Epochs without improvement to wait before stopping.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// Smallest change that counts as an improvement; the sign is ignored.
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.min_delta = delta;
        self
    }

    /// Whether the monitored value should go down or up; [`Mode::Auto`] (the default) decides
    /// from the monitor.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A value to beat: until the metric beats it, epochs count against patience even when
    /// they improve on the best so far.
    pub fn baseline(mut self, baseline: Option<f32>) -> Self {
        self.baseline = baseline;
        self
    }

    /// Ask for a snapshot of the best weights, to restore when training ends.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// Ignore epochs before this one (warm-up).
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// Stop when the monitored value is NaN or infinite (default true).
    pub fn check_finite(mut self, check: bool) -> Self {
        self.check_finite = check;
        self
    }

    /// Stop as soon as the value is strictly better than this (good enough).
    pub fn stopping_threshold(mut self, threshold: Option<f32>) -> Self {
        self.stopping_threshold = threshold;
        self
    }

    /// Stop as soon as the value is strictly worse than this (diverged).
    pub fn divergence_threshold(mut self, threshold: Option<f32>) -> Self {
        self.divergence_threshold = threshold;
        self
    }

    /// Rejects settings that would silently never (or always) trigger: a NaN compares false
    /// with everything.
    pub fn validate(&self) -> Result<()> {
        if self.monitor.name().is_empty() {
            return Err(Error::Config(
                "early stopping monitors an empty metric name; use e.g. \"val_loss\"".into(),
            ));
        }
        if self.min_delta.is_nan() {
            return Err(Error::Config("early stopping min_delta is NaN; use 0.0 or more".into()));
        }
        let optional = [
            ("baseline", self.baseline),
            ("stopping_threshold", self.stopping_threshold),
            ("divergence_threshold", self.divergence_threshold),
        ];
        for (name, value) in optional {
            if value.is_some_and(f32::is_nan) {
                return Err(Error::Config(format!("early stopping {name} is NaN; pass None to disable it")));
            }
        }
        Ok(())
    }

    /// Forget everything seen, keep the settings (Keras's `on_train_begin`), to reuse the value
    /// for another training run.
    pub fn reset(&mut self) {
        self.progress = Progress::default();
    }

    /// Record the metrics of `epoch` (0-based) and say whether to stop. See the module docs for
    /// the order of the rules.
    pub fn on_epoch_end(&mut self, epoch: usize, metrics: &EpochMetrics) -> Decision {
        self.progress.wants_snapshot = false;
        let Some(current) = self.monitor.value(metrics) else {
            return Decision::Continue;
        };
        if epoch < self.start_from_epoch {
            return Decision::Continue;
        }
        if self.check_finite && !current.is_finite() {
            return self.stop(epoch, current, StopReason::NonFinite);
        }
        let patience_exhausted = self.keras_step(epoch, current);
        if let Some(reason) = self.threshold_reason(current) {
            return self.stop(epoch, current, reason);
        }
        if patience_exhausted {
            return self.stop(epoch, current, StopReason::Patience);
        }
        Decision::Continue
    }

    /// Keras's `on_epoch_end` after its early returns; true when patience is exhausted.
    fn keras_step(&mut self, epoch: usize, current: f32) -> bool {
        // With `best` starting at None the improvement below snapshots the same epoch; this
        // matters when restore_best_weights is switched on mid-run, as in Keras.
        if self.restore_best_weights && self.progress.snapshot_epoch.is_none() {
            self.take_snapshot(epoch);
        }
        self.progress.wait += 1;
        if self.improves(current, self.progress.best) {
            self.progress.best = Some(current);
            self.progress.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.take_snapshot(epoch);
            }
            // Keras returns here even when the baseline keeps `wait` running: an improving
            // epoch never stops training.
            if self.baseline.is_none() || self.improves(current, self.baseline) {
                self.progress.wait = 0;
            }
            return false;
        }
        self.progress.wait >= self.patience && epoch > 0
    }

    fn take_snapshot(&mut self, epoch: usize) {
        self.progress.snapshot_epoch = Some(epoch);
        self.progress.wants_snapshot = true;
    }

    /// Keras's `_is_improvement`: no reference yet counts as an improvement. The subtraction is
    /// done in f64 like Python's floats, the comparison in f32 like `keras.ops.less` on floats.
    fn improves(&self, current: f32, reference: Option<f32>) -> bool {
        let Some(reference) = reference else {
            return true;
        };
        let delta = self.min_delta.abs();
        match self.direction() {
            Mode::Max => ((current as f64 - delta) as f32) > reference,
            _ => ((current as f64 + delta) as f32) < reference,
        }
    }

    /// Lightning's threshold checks, in its order; strict comparisons as in Lightning.
    fn threshold_reason(&self, current: f32) -> Option<StopReason> {
        let better = |a: f32, b: f32| match self.direction() {
            Mode::Max => a > b,
            _ => a < b,
        };
        if self.stopping_threshold.is_some_and(|t| better(current, t)) {
            return Some(StopReason::StoppingThreshold);
        }
        if self.divergence_threshold.is_some_and(|t| better(t, current)) {
            return Some(StopReason::DivergenceThreshold);
        }
        None
    }

    fn stop(&mut self, epoch: usize, current: f32, reason: StopReason) -> Decision {
        self.progress.stopped_epoch = Some(epoch);
        self.progress.stop_reason = Some(reason);
        self.progress.stop_value = Some(current);
        Decision::Stop
    }

    /// [`Mode::Min`] or [`Mode::Max`]: the mode with `Auto` resolved.
    pub fn direction(&self) -> Mode {
        match self.mode {
            Mode::Auto => self.monitor.auto_mode(),
            fixed => fixed,
        }
    }

    /// The metric being watched.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The epoch at which training was told to stop; `None` while it goes on.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.progress.stopped_epoch
    }

    /// Which rule stopped training; `None` while it goes on.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.progress.stop_reason
    }

    /// The best monitored value so far (the first value seen counts as an improvement).
    pub fn best(&self) -> Option<f32> {
        self.progress.best
    }

    /// The epoch of [`best`](Self::best).
    pub fn best_epoch(&self) -> Option<usize> {
        self.progress.best_epoch
    }

    /// Epochs counted against patience (Keras's `wait`).
    pub fn wait(&self) -> usize {
        self.progress.wait
    }

    /// True iff the last [`on_epoch_end`](Self::on_epoch_end) made the current weights the
    /// snapshot to restore; only with `restore_best_weights`.
    pub fn wants_snapshot(&self) -> bool {
        self.progress.wants_snapshot
    }

    /// The epoch whose weights to restore when training ends, however it ended; `None` without
    /// `restore_best_weights` or before any snapshot.
    pub fn restore_epoch(&self) -> Option<usize> {
        self.progress.snapshot_epoch.filter(|_| self.restore_best_weights)
    }

    /// A log line saying why training stopped, e.g. "epoch 7: val_loss did not improve by more
    /// than 0 for 5 epochs; best 0.31 at epoch 2".
    pub fn stop_message(&self) -> Option<String> {
        let (epoch, reason) = (self.progress.stopped_epoch?, self.progress.stop_reason?);
        let name = self.monitor.name();
        let value = self.progress.stop_value.unwrap_or(f32::NAN);
        let what = match reason {
            StopReason::Patience => format!(
                "{name} did not improve by more than {} for {} epochs",
                self.min_delta.abs(),
                self.progress.wait
            ),
            StopReason::NonFinite => format!("{name} = {value} is not finite"),
            StopReason::StoppingThreshold => format!(
                "{name} = {value} reached the stopping threshold {}",
                self.stopping_threshold.unwrap_or(f32::NAN)
            ),
            StopReason::DivergenceThreshold => format!(
                "{name} = {value} crossed the divergence threshold {}",
                self.divergence_threshold.unwrap_or(f32::NAN)
            ),
        };
        let best = match (self.progress.best, self.progress.best_epoch) {
            (Some(best), Some(at)) => format!("; best {best} at epoch {at}"),
            _ => String::new(),
        };
        Some(format!("epoch {epoch}: {what}{best}"))
    }
}
