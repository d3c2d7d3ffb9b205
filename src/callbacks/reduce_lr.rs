//! ReduceLROnPlateau with the exact decisions of Keras 3's callback
//! (`keras/src/callbacks/reduce_lr_on_plateau.py`, checked against Keras 3.15.1 by
//! `tests/lr_keras.rs` and its fixture): when a monitored metric stops improving for
//! `patience` epochs, multiply the learning rate by `factor`, never below `min_lr`, then wait
//! `cooldown` epochs before counting again.
//!
//! Why copy Keras exactly: people tune `patience`, `factor` and `min_delta` with Keras and
//! expect the same rates here. Host-only logic, serializable so that a resumed run decides as
//! the uninterrupted one would.
//!
//! # One epoch, in order (Keras's `on_epoch_end`)
//! 1. No monitored value: nothing changes (Keras warns; a library does not print).
//! 2. In cooldown (`cooldown_counter > 0`): count it down and reset `wait`.
//! 3. An improvement over `best` (the first value seen always is one) becomes `best` and resets
//!    `wait`. Otherwise, out of cooldown: `wait += 1`, and when `wait >= patience` the rate is
//!    reduced if it is above `min_lr`; a reduction starts the cooldown and resets `wait`.
//!
//! Improvement is Keras's `MonitorCallback._is_improvement` (see
//! [`crate::callbacks::monitor`]): `current - min_delta > best` (max) or
//! `current + min_delta < best` (min), subtracted in f64 and compared in f32; a NaN never
//! improves, though a NaN seen first becomes `best`, as in Keras.
//!
//! # The rate in f32
//! Keras's optimizer keeps the rate in a float32 variable. A reduction reads it as a double,
//! reduces only if `old_lr > np.float32(min_lr)`, computes `max(old_lr * factor, min_lr)` in
//! double and stores it back as float32. The comparison in float32 is what stops the
//! reductions at a `min_lr` such as 1e-4, which float32 cannot hold: the stored floor,
//! 9.99999974e-5, would compare above the double 1e-4 forever. We do the same, step by step.

use serde::{Deserialize, Serialize};

use crate::callbacks::history::json_float;
use crate::callbacks::metrics::EpochMetrics;
use crate::callbacks::monitor::{keras_improves, Mode, Monitor};
use crate::error::{Error, Result};

/// What changes from epoch to epoch; [`ReduceLrOnPlateau::reset`] clears it (Keras's
/// `on_train_begin`), the settings stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// Epochs without improvement counted since the last reset (Keras's `wait`).
    wait: usize,
    /// Cooldown epochs still to go (Keras's `cooldown_counter`).
    cooldown_counter: usize,
    /// The best monitored value so far (Keras's `best`; `None` before the first one).
    #[serde(with = "json_float::option")]
    best: Option<f32>,
}

/// Reduces the learning rate when a monitored metric stops improving (Keras 3 semantics, see
/// the module docs). Build with [`ReduceLrOnPlateau::new`] and the setters; the trainer calls
/// [`on_epoch_end`](ReduceLrOnPlateau::on_epoch_end) once per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    monitor: Monitor,
    #[serde(with = "json_float")]
    factor: f64,
    patience: usize,
    mode: Mode,
    /// Kept as given; its absolute value is used (Keras: `abs(min_delta)`).
    #[serde(with = "json_float")]
    min_delta: f64,
    cooldown: usize,
    #[serde(with = "json_float")]
    min_lr: f64,
    progress: Progress,
}

impl Default for ReduceLrOnPlateau {
    /// Keras's defaults: `val_loss`, factor 0.1, patience 10, auto, min_delta 1e-4, cooldown
    /// 0, min_lr 0.
    fn default() -> Self {
        ReduceLrOnPlateau {
            monitor: Monitor::val_loss(),
            factor: 0.1,
            patience: 10,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            progress: Progress::default(),
        }
    }
}

impl ReduceLrOnPlateau {
    /// Keras's defaults, watching `monitor` (a [`Monitor`] or a name such as `"val_loss"`).
    pub fn new(monitor: impl Into<Monitor>) -> Self {
        ReduceLrOnPlateau { monitor: monitor.into(), ..Self::default() }
    }

    /// The new rate is `old * factor`; in `(0, 1)`.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before a reduction.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// Whether the metric should go down or up; [`Mode::Auto`] decides from the monitor.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Smallest change that counts as an improvement; the sign is ignored.
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.min_delta = delta;
        self
    }

    /// Epochs after a reduction during which no epoch counts against patience.
    pub fn cooldown(mut self, epochs: usize) -> Self {
        self.cooldown = epochs;
        self
    }

    /// The rate is never reduced below this.
    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }

    /// Rejects settings Keras refuses (`factor >= 1`) and those that would never or always
    /// trigger; each error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Config(format!("reduce_lr_on_plateau: {what}")));
        if self.monitor.name().is_empty() {
            return bad("monitor is an empty metric name; use e.g. \"val_loss\"".into());
        }
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return bad(format!(
                "factor must be in (0, 1): the new rate is old * factor (Keras refuses >= 1), got {}",
                self.factor
            ));
        }
        if self.min_delta.is_nan() {
            return bad("min_delta is NaN; use 0.0 or more".into());
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0) {
            return bad(format!("min_lr must be finite and >= 0, got {}", self.min_lr));
        }
        Ok(())
    }

    /// Forgets what it saw, keeps the settings (Keras's `on_train_begin`).
    pub fn reset(&mut self) {
        self.progress = Progress::default();
    }

    /// Records the metrics of one epoch, trained at learning rate `lr`, and returns the new
    /// rate when this epoch reduces it. See the module docs for the rules.
    pub fn on_epoch_end(&mut self, metrics: &EpochMetrics, lr: f32) -> Option<f32> {
        let current = self.monitor.value(metrics)?;
        let direction = self.direction();
        let p = &mut self.progress;
        if p.cooldown_counter > 0 {
            p.cooldown_counter -= 1;
            p.wait = 0;
        }
        if keras_improves(direction, self.min_delta, current, p.best) {
            p.best = Some(current);
            p.wait = 0;
            return None;
        }
        if p.cooldown_counter > 0 {
            return None;
        }
        p.wait += 1;
        if p.wait < self.patience {
            return None;
        }
        // Keras: `old_lr > np.float32(min_lr)`, both sides exact float32 values.
        if lr <= self.min_lr as f32 {
            return None;
        }
        let new_lr = ((lr as f64) * self.factor).max(self.min_lr) as f32;
        p.cooldown_counter = self.cooldown;
        p.wait = 0;
        Some(new_lr)
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

    /// Epochs counted against patience (Keras's `wait`).
    pub fn wait(&self) -> usize {
        self.progress.wait
    }

    /// Cooldown epochs still to go (Keras's `cooldown_counter`).
    pub fn cooldown_counter(&self) -> usize {
        self.progress.cooldown_counter
    }

    /// The best monitored value so far.
    pub fn best(&self) -> Option<f32> {
        self.progress.best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(name: &str, value: f32) -> EpochMetrics {
        EpochMetrics::new().with(name, value)
    }

    /// Keras's own tests (`keras/src/callbacks/reduce_lr_on_plateau_test.py`, Keras 3.15.1),
    /// which fit a model whose loss falls by less than `min_delta` every epoch: the same
    /// settings, the same rate at the end. (Its schedule test is `TrainerOptions::validate`'s.)
    #[test]
    fn keras_test_ports() {
        let falling = [0.9, 0.8, 0.7, 0.6];
        let keras = || ReduceLrOnPlateau::new("val_loss").patience(1).factor(0.1).min_delta(100.0);
        // (callback, epochs, initial rate, final rate, Keras's test). Keras's assertEqual on a
        // float32 variable compares in float32 (exact here); its cooldown test uses
        // assertAllClose (relative 1e-6): 0.1 * 0.1 * 0.1 in float32 steps is not f32(0.001).
        let rows = [
            (keras(), 2, 0.1, 0.01, 0.0, "test_reduces_lr_with_model_fit"),
            (keras().min_delta(10.0).min_lr(0.005), 4, 0.1, 0.005, 0.0, "test_honors_min_lr"),
            (keras().cooldown(2), 4, 0.1, 0.001, 1e-6, "test_cooldown: every other epoch"),
        ];
        for (mut r, epochs, initial, want, rtol, why) in rows {
            let mut lr: f32 = initial;
            for &loss in &falling[..epochs] {
                if let Some(new_lr) = r.on_epoch_end(&metrics("val_loss", loss), lr) {
                    lr = new_lr;
                }
            }
            let want = want as f32;
            assert!((lr - want).abs() <= rtol * want, "{why}: {lr} vs {want}");
        }
    }

    /// Keras's `test_state_reset_across_fit_calls`: `reset` (its `on_train_begin`) clears
    /// `best`, `wait` and `cooldown_counter`.
    #[test]
    fn reset_clears_the_progress_and_keeps_the_settings() {
        let mut r = ReduceLrOnPlateau::new("loss").patience(1).factor(0.1).min_delta(0.0).cooldown(2);
        for loss in [0.5, 0.6, 0.7] {
            r.on_epoch_end(&metrics("loss", loss), 0.1);
        }
        assert!(r.best().is_some() && r.cooldown_counter() > 0, "{r:?}");
        r.reset();
        assert_eq!((r.best(), r.wait(), r.cooldown_counter()), (None, 0, 0));
        let fresh = ReduceLrOnPlateau::new("loss").patience(1).factor(0.1).min_delta(0.0).cooldown(2);
        assert_eq!(r, fresh);
    }

    #[test]
    fn bad_settings_are_errors_naming_the_field() {
        let base = || ReduceLrOnPlateau::new("val_loss");
        // (settings, words the error must hold)
        let rows = [
            (base().factor(1.0), "factor"),
            (base().factor(1.5), "factor"),
            (base().factor(0.0), "factor"),
            (base().factor(f64::NAN), "factor"),
            (base().min_delta(f64::NAN), "min_delta"),
            (base().min_lr(-1e-3), "min_lr"),
            (base().min_lr(f64::INFINITY), "min_lr"),
            (ReduceLrOnPlateau::new(""), "monitor"),
        ];
        for (settings, words) in rows {
            let err = settings.validate().expect_err(words).to_string();
            assert!(err.contains("reduce_lr_on_plateau") && err.contains(words), "`{err}` lacks `{words}`");
        }
        assert!(base().validate().is_ok(), "Keras's defaults are valid");
    }

    #[test]
    fn state_round_trips_through_json_with_a_nan_best() {
        let mut r = ReduceLrOnPlateau::new("val_loss").patience(2).cooldown(1);
        assert_eq!(r.on_epoch_end(&metrics("val_loss", f32::NAN), 0.1), None);
        assert_eq!(r.on_epoch_end(&metrics("val_loss", 0.5), 0.1), None);
        let json = serde_json::to_string(&r).expect("serialize");
        let back: ReduceLrOnPlateau = serde_json::from_str(&json).expect("deserialize");
        assert!(back.best().is_some_and(f32::is_nan), "{json}");
        assert_eq!(back.wait(), 1, "{json}");
        let mut again = back.clone();
        let (a, b) = (
            again.on_epoch_end(&metrics("val_loss", 0.5), 0.1),
            r.on_epoch_end(&metrics("val_loss", 0.5), 0.1),
        );
        assert_eq!((a, b), (Some(0.01), Some(0.01)), "patience 2 reached after the copy as before it");
        assert_eq!(again.cooldown_counter(), 1);
    }
}
