//! Optimizer settings shared by the GPU and CPU paths.
//!
//! Adam follows Kingma & Ba with bias correction: `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g^2`,
//! `p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)`, and AdamW's decoupled decay
//! `p -= lr * wd * p` applied before the Adam step. SGD with momentum follows PyTorch:
//! `u = mu u + g`, `p -= lr u` (plain SGD when `mu = 0`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The update rule and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Adam with bias correction; AdamW when `weight_decay > 0` (see the module docs).
    Adam {
        /// Learning rate, finite and > 0.
        lr: f32,
        /// Decay of the first moment `m`, in `[0, 1)`.
        beta1: f32,
        /// Decay of the second moment `v`, in `[0, 1)`.
        beta2: f32,
        /// Added to `sqrt(v_hat)` so the step stays finite; finite and > 0 (Keras: 1e-7,
        /// PyTorch: 1e-8).
        eps: f32,
        /// Decoupled decay per step, `p -= lr * weight_decay * p`; finite and >= 0. It applies
        /// to every parameter, biases included.
        weight_decay: f32,
    },
    /// SGD with PyTorch's momentum (no dampening, no Nesterov).
    Sgd {
        /// Learning rate, finite and > 0.
        lr: f32,
        /// Momentum `mu` in `[0, 1)`; 0 is plain SGD.
        momentum: f32,
    },
}

impl Default for Optimizer {
    /// Adam with Keras's defaults: lr 1e-3, betas 0.9/0.999, eps 1e-7.
    fn default() -> Self {
        Optimizer::adam(1e-3)
    }
}

impl Optimizer {
    /// Adam with Keras's defaults and the given learning rate.
    pub fn adam(lr: f32) -> Self {
        Optimizer::Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.0 }
    }

    /// SGD with momentum `momentum` (0 for plain SGD).
    pub fn sgd(lr: f32, momentum: f32) -> Self {
        Optimizer::Sgd { lr, momentum }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match *self {
            Optimizer::Adam { lr, .. } | Optimizer::Sgd { lr, .. } => lr,
        }
    }

    /// The same rule with the learning rate `lr` (what ReduceLROnPlateau changes; the rest
    /// of the settings stay).
    pub fn with_lr(self, lr: f32) -> Self {
        match self {
            Optimizer::Adam { beta1, beta2, eps, weight_decay, .. } => {
                Optimizer::Adam { lr, beta1, beta2, eps, weight_decay }
            }
            Optimizer::Sgd { momentum, .. } => Optimizer::Sgd { lr, momentum },
        }
    }

    /// Rejects settings that cannot train: a learning rate of zero, NaN, betas outside [0, 1) ...
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::Config(format!("learning rate must be finite and > 0, got {lr}")));
        }
        match *self {
            Optimizer::Adam { beta1, beta2, eps, weight_decay, .. } => {
                for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(Error::Config(format!("{name} must be in [0, 1), got {b}")));
                    }
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(Error::Config(format!("eps must be finite and > 0, got {eps}")));
                }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                    return Err(Error::Config(format!(
                        "weight_decay must be finite and >= 0, got {weight_decay}"
                    )));
                }
            }
            Optimizer::Sgd { momentum, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(Error::Config(format!("momentum must be in [0, 1), got {momentum}")));
                }
            }
        }
        Ok(())
    }

    /// The per-step scalars both backends use, computed in f64 for step `t` (1-based):
    /// for Adam `[lr, beta1, beta2, eps, 1/(1-beta1^t), 1/(1-beta2^t), weight_decay]`,
    /// for SGD `[lr, momentum, 0, 0, 1, 1, 0]`.
    pub fn step_scalars(&self, t: u64) -> StepScalars {
        match *self {
            Optimizer::Adam { lr, beta1, beta2, eps, weight_decay } => {
                let t = t.min(i32::MAX as u64) as i32;
                StepScalars {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    inv_bias1: (1.0 / (1.0 - (beta1 as f64).powi(t))) as f32,
                    inv_bias2: (1.0 / (1.0 - (beta2 as f64).powi(t))) as f32,
                    weight_decay,
                }
            }
            Optimizer::Sgd { lr, momentum } => StepScalars {
                lr,
                beta1: momentum,
                beta2: 0.0,
                eps: 0.0,
                inv_bias1: 1.0,
                inv_bias2: 1.0,
                weight_decay: 0.0,
            },
        }
    }
}

/// The scalars one optimizer step needs, identical for the GPU and CPU paths.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepScalars {
    /// Learning rate.
    pub lr: f32,
    /// Adam's `beta1`; SGD's momentum.
    pub beta1: f32,
    /// Adam's `beta2`; 0 for SGD.
    pub beta2: f32,
    /// Adam's `eps`; 0 for SGD.
    pub eps: f32,
    /// `1 / (1 - beta1^t)`, Adam's bias correction of `m` at step `t`; 1 for SGD.
    pub inv_bias1: f32,
    /// `1 / (1 - beta2^t)`, Adam's bias correction of `v` at step `t`; 1 for SGD.
    pub inv_bias2: f32,
    /// AdamW's decoupled decay; 0 for SGD.
    pub weight_decay: f32,
}
