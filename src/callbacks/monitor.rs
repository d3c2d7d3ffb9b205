//! What early stopping (and, next, learning-rate control) watches: a [`Monitor`] names a
//! metric by its Keras log key, and [`Mode`] says which way is better, `Auto` deciding from
//! the name as Keras does.

use serde::{Deserialize, Serialize};

use crate::callbacks::metrics::{EpochMetrics, VAL_PREFIX};

/// Metrics that get better as they go up, by name without the `val_` prefix. Keras 3 asks
/// each metric for its direction (`accuracy`, `binary_accuracy`, `r2_score`, `auc`,
/// `precision`, `recall` go up; losses and errors go down); Keras 2's rule maximised any name
/// containing "acc". Everything not listed here is minimised.
const MAXIMISED: &[&str] = &[
    "acc",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "r2",
    "r2_score",
    "auc",
    "precision",
    "recall",
];

/// Which metric early stopping watches: any name the training reports (`loss`, `accuracy`,
/// `mae`, ... and the `val_` twins measured on the validation rows), as in Keras's
/// `monitor="val_loss"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Monitor(String);

impl Monitor {
    /// Watches the metric called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Monitor(name.into())
    }

    /// The training loss (minimised under [`Mode::Auto`]).
    pub fn loss() -> Self {
        Monitor::new("loss")
    }

    /// The training accuracy (maximised under [`Mode::Auto`]).
    pub fn accuracy() -> Self {
        Monitor::new("accuracy")
    }

    /// The validation loss; without a validation set no epoch is seen, so nothing stops.
    pub fn val_loss() -> Self {
        Monitor::new("val_loss")
    }

    /// The validation accuracy; without a validation set no epoch is seen either.
    pub fn val_accuracy() -> Self {
        Monitor::new("val_accuracy")
    }

    /// The Keras log key, e.g. `"val_loss"`.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// This metric's value in `metrics`; `None` when it was not measured.
    pub fn value(&self, metrics: &EpochMetrics) -> Option<f32> {
        metrics.get(&self.0)
    }

    /// What [`Mode::Auto`] means for this metric: the `val_` prefix is stripped, then the
    /// names in a list of metrics that go up (accuracies, R², AUC, precision, recall) are
    /// maximised and everything else (losses, errors) minimised, as Keras decides.
    pub fn auto_mode(&self) -> Mode {
        let base = self.0.strip_prefix(VAL_PREFIX).unwrap_or(&self.0);
        if MAXIMISED.contains(&base) {
            Mode::Max
        } else {
            Mode::Min
        }
    }
}

impl From<&str> for Monitor {
    fn from(name: &str) -> Self {
        Monitor::new(name)
    }
}

impl From<String> for Monitor {
    fn from(name: String) -> Self {
        Monitor(name)
    }
}

/// Whether lower or higher values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Decided by the monitor: see [`Monitor::auto_mode`].
    Auto,
    /// Lower is better (losses).
    Min,
    /// Higher is better (accuracies).
    Max,
}

/// Keras's `MonitorCallback._is_improvement` for a resolved direction (`Min` or `Max`): no
/// reference yet counts as an improvement; otherwise `current ∓ |min_delta|` is computed in
/// f64 like Python's floats and compared with the reference in f32 like `keras.ops.less` and
/// `keras.ops.greater` on floats. A NaN on either side is never an improvement.
pub(crate) fn keras_improves(direction: Mode, min_delta: f64, current: f32, reference: Option<f32>) -> bool {
    let Some(reference) = reference else {
        return true;
    };
    let delta = min_delta.abs();
    match direction {
        Mode::Max => ((current as f64 - delta) as f32) > reference,
        _ => ((current as f64 + delta) as f32) < reference,
    }
}
