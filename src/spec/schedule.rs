//! Learning-rate schedules: the rate of every optimizer step as a function of the step, with
//! Keras's formulas (`keras.optimizers.schedules.ExponentialDecay`, `CosineDecay` with Keras
//! 3's linear warmup) and PyTorch's `StepLR`.
//!
//! The rate is one of the per-step scalars the executors already upload (see
//! [`Optimizer::step_scalars`]), so a schedule costs no pipeline and no recompilation: each
//! executor evaluates [`LrSchedule::step_scalars`] on the host, in f64, rounded to f32 once,
//! so the CPU, one device and mirrored devices see the same bits.
//!
//! # Steps
//! Our step `t` is 1-based (Adam's `t`). Keras evaluates a schedule at `optimizer.iterations`,
//! the steps taken *before* the update, so step `t` gets Keras's `schedule(t - 1)`; PyTorch's
//! `StepLR` stepped once per optimizer step gives step `t` the rate of `last_epoch = t - 1`.
//!
//! # The base rate
//! Every schedule scales a base rate, the optimizer's `lr` (or what ReduceLROnPlateau set, see
//! `crate::callbacks::reduce_lr`): Keras's `initial_learning_rate`, PyTorch's `base_lr`. With a
//! warmup, the base rate is the peak the warmup climbs to (Keras's `warmup_target`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::optimizer::{Optimizer, StepScalars};

/// How the learning rate changes from step to step; `lr` below is the base rate.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum LrSchedule {
    /// `lr` at every step (the default).
    #[default]
    Constant,
    /// PyTorch's `StepLR`, stepped once per optimizer step: `lr * gamma^floor((t-1) /
    /// step_size)`. For PyTorch's usual once-per-epoch stepping, set `step_size` to epochs
    /// times the steps of an epoch (`ceil(training rows / batch size)`).
    StepDecay {
        /// Optimizer steps between two decays, at least 1.
        step_size: u64,
        /// Factor of each decay, finite and > 0 (PyTorch's default is 0.1).
        gamma: f64,
    },
    /// Keras's `ExponentialDecay`: `lr * decay_rate^p` with `p = (t-1) / decay_steps`, taken
    /// down to an integer when `staircase`.
    ExponentialDecay {
        /// Steps over which the rate is multiplied by `decay_rate` once, at least 1.
        decay_steps: u64,
        /// Finite and > 0; an f32 because Keras casts it to the rate's float32 (which matters:
        /// 0.96 in f64 and in f32 differ by 1e-6 after 50 decays).
        decay_rate: f32,
        /// Decay in whole steps of `decay_steps`, as Keras's `staircase=True`.
        staircase: bool,
    },
    /// Keras 3's `CosineDecay`: with `warmup_steps > 0`, first a straight line from
    /// `warmup_from` up to `lr` over `warmup_steps` steps; then (or from the start) a cosine
    /// from `lr` down to `alpha * lr` over `decay_steps` steps, where it stays. In Keras's
    /// terms: `CosineDecay(initial_learning_rate=warmup_from, decay_steps, alpha,
    /// warmup_target=lr, warmup_steps)`, or `initial_learning_rate=lr` without warmup.
    CosineDecay {
        /// Length of the cosine, at least 1.
        decay_steps: u64,
        /// Fraction of `lr` the cosine ends at, finite, in `[0, 1]` (Keras's default 0).
        alpha: f64,
        /// Length of the linear warmup before the cosine; 0 for none.
        warmup_steps: u64,
        /// The rate the warmup starts from, finite and >= 0 (commonly 0); unused without
        /// warmup.
        warmup_from: f32,
    },
}

impl LrSchedule {
    /// The rate of the `t`-th optimizer step (1-based) for the base rate `lr`: computed in
    /// f64, rounded to f32 once.
    pub fn lr(&self, lr: f32, t: u64) -> f32 {
        let base = lr as f64;
        // Keras's `optimizer.iterations`: the steps taken before this one.
        let step = t.saturating_sub(1) as f64;
        let rate = match *self {
            LrSchedule::Constant => return lr,
            LrSchedule::StepDecay { step_size, gamma } => {
                let decays = t.saturating_sub(1) / step_size.max(1);
                base * gamma.powf(decays as f64)
            }
            LrSchedule::ExponentialDecay { decay_steps, decay_rate, staircase } => {
                let mut p = step / decay_steps.max(1) as f64;
                if staircase {
                    p = p.floor();
                }
                base * (decay_rate as f64).powf(p)
            }
            LrSchedule::CosineDecay { decay_steps, alpha, warmup_steps, warmup_from } => {
                let (decay, warmup) = (decay_steps.max(1) as f64, warmup_steps as f64);
                let step = step.min(decay + warmup);
                if step < warmup {
                    let from = warmup_from as f64;
                    (base - from) * (step / warmup) + from
                } else {
                    let fraction = (step - warmup) / decay;
                    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * fraction).cos());
                    base * ((1.0 - alpha) * cosine + alpha)
                }
            }
        };
        rate as f32
    }

    /// [`Optimizer::step_scalars`] of step `t` with the rate of this schedule: what every
    /// executor uploads for the step.
    pub fn step_scalars(&self, optimizer: &Optimizer, t: u64) -> StepScalars {
        let mut scalars = optimizer.step_scalars(t);
        scalars.lr = self.lr(optimizer.lr(), t);
        scalars
    }

    /// Rejects a base rate an executor cannot be given: NaN, infinite or negative. Zero is
    /// allowed: ReduceLROnPlateau with `min_lr = 0` may reach it, as in Keras.
    pub(crate) fn check_rate(lr: f32) -> Result<()> {
        match lr.is_finite() && lr >= 0.0 {
            true => Ok(()),
            false => Err(Error::Config(format!("learning rate must be finite and >= 0, got {lr}"))),
        }
    }

    /// Whether this is [`LrSchedule::Constant`]: the rate does not change with the step.
    pub fn is_constant(&self) -> bool {
        matches!(self, LrSchedule::Constant)
    }

    /// Rejects a schedule that cannot train: a zero length, a NaN or negative factor...
    /// Errors name the field, e.g. `lr_schedule: ExponentialDecay decay_steps must be at
    /// least 1`.
    pub fn validate(&self) -> Result<()> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let length = |steps: u64, name: &str| match steps {
            0 => Err(Error::Config(format!("lr_schedule: {name} must be at least 1 (optimizer steps)"))),
            _ => Ok(()),
        };
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::StepDecay { step_size, gamma } => {
                length(step_size, "StepDecay step_size")?;
                check(positive(gamma), "StepDecay gamma", gamma, "> 0")
            }
            LrSchedule::ExponentialDecay { decay_steps, decay_rate, .. } => {
                length(decay_steps, "ExponentialDecay decay_steps")?;
                let rate = decay_rate as f64;
                check(positive(rate), "ExponentialDecay decay_rate", rate, "> 0")
            }
            LrSchedule::CosineDecay { decay_steps, alpha, warmup_from, .. } => {
                length(decay_steps, "CosineDecay decay_steps")?;
                check((0.0..=1.0).contains(&alpha), "CosineDecay alpha", alpha, "in [0, 1]")?;
                let from = warmup_from as f64;
                check(from.is_finite() && from >= 0.0, "CosineDecay warmup_from", from, ">= 0")
            }
        }
    }
}

fn check(ok: bool, name: &str, value: f64, want: &str) -> Result<()> {
    if ok {
        return Ok(());
    }
    Err(Error::Config(format!("lr_schedule: {name} must be finite and {want}, got {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's own `StepLR` docstring example: `lr = 0.05` for epochs 0-29, `0.005` for
    /// 30-59, `0.0005` for 60-89 with `step_size=30, gamma=0.1`; our step `t` is its
    /// `last_epoch + 1`.
    #[test]
    fn step_decay_follows_the_pytorch_docstring() {
        let s = LrSchedule::StepDecay { step_size: 30, gamma: 0.1 };
        // (t, expected, why)
        let rows = [
            (1, 0.05, "first step: base rate"),
            (30, 0.05, "last epoch before the first decay (last_epoch 29)"),
            (31, 0.005, "first decay at last_epoch 30"),
            (60, 0.005, "last_epoch 59"),
            (61, 0.0005, "second decay"),
            (90, 0.0005, "last_epoch 89"),
        ];
        for (t, want, why) in rows {
            assert_eq!(s.lr(0.05, t), want as f32, "t = {t}: {why}");
        }
    }

    #[test]
    fn constant_is_the_optimizer_rate_and_scalars_carry_the_schedule() {
        let adam = Optimizer::adam(3e-4);
        assert_eq!(LrSchedule::Constant.step_scalars(&adam, 7), adam.step_scalars(7));
        let s = LrSchedule::StepDecay { step_size: 2, gamma: 0.5 };
        let scalars = s.step_scalars(&adam, 3);
        assert_eq!(scalars.lr, 1.5e-4);
        assert_eq!(scalars.inv_bias1, adam.step_scalars(3).inv_bias1, "only the rate changes");
    }

    #[test]
    fn bad_schedules_are_errors_naming_the_field() {
        let cosine = |alpha, warmup_from| LrSchedule::CosineDecay {
            decay_steps: 10,
            alpha,
            warmup_steps: 2,
            warmup_from,
        };
        // (schedule, words the error must hold)
        let rows = [
            (LrSchedule::StepDecay { step_size: 0, gamma: 0.1 }, "StepDecay step_size"),
            (LrSchedule::StepDecay { step_size: 3, gamma: f64::NAN }, "StepDecay gamma"),
            (LrSchedule::StepDecay { step_size: 3, gamma: 0.0 }, "StepDecay gamma"),
            (
                LrSchedule::ExponentialDecay { decay_steps: 0, decay_rate: 0.9, staircase: false },
                "ExponentialDecay decay_steps",
            ),
            (
                LrSchedule::ExponentialDecay { decay_steps: 5, decay_rate: -1.0, staircase: true },
                "ExponentialDecay decay_rate",
            ),
            (cosine(1.5, 0.0), "CosineDecay alpha"),
            (cosine(f64::NAN, 0.0), "CosineDecay alpha"),
            (cosine(0.0, -1e-3), "CosineDecay warmup_from"),
            (cosine(0.0, f32::INFINITY), "CosineDecay warmup_from"),
        ];
        for (schedule, words) in rows {
            let err = schedule.validate().expect_err(words).to_string();
            assert!(
                err.contains("lr_schedule") && err.contains(words),
                "{schedule:?}: `{err}` lacks `{words}`"
            );
        }
        assert!(cosine(0.0, 0.0).validate().is_ok());
        assert!(LrSchedule::Constant.validate().is_ok());
    }
}
