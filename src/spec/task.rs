//! What the network is trained to do: how inputs reach it and which loss it minimises, with
//! the metrics that loss reports.
//!
//! Inputs are u8 pixels, which every executor sees as `p / 255` ([`pixel_value`]), or f32
//! values seen as they are (the data set's `Features`); targets are class indices, f32
//! values or multi-hot 0/1 rows (its `Targets`). The loss reads the last layer's outputs.
//!
//! Every loss is a mean over rows and outputs, as Keras's losses and PyTorch's
//! `reduction="mean"` are, so its gradient is scaled by `1 / (rows * outputs)` (the softmax
//! cross-entropy's outputs are one distribution per row: `1 / rows`).
//!
//! `Loss` is `PartialEq` but not `Eq` or `Hash`: Huber's `delta` is an `f32`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Keras's `Huber()` and PyTorch's `HuberLoss()` default `delta`.
pub const DEFAULT_HUBER_DELTA: f32 = 1.0;

/// The loss the network's outputs are trained against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Loss {
    /// Softmax over the outputs (logits: the last layer's activation is the identity), then
    /// the negative log-probability of the row's class; targets are class indices.
    #[default]
    SoftmaxCrossEntropy,
    /// The mean over rows and outputs of `(y_hat - y)^2` (the last layer's activation is the
    /// identity); targets are f32 values, one per output.
    MeanSquaredError,
    /// Sigmoid cross-entropy on logits (the last layer's activation is the identity), each
    /// output its own yes/no: binary classification (one output, `Targets::Classes` with 2
    /// classes, label 1 the positive class) or multi-label (`Targets::MultiHot`, one output
    /// per class). Per output `max(z, 0) - z y + log1p(exp(-|z|))`, the stable form of
    /// Keras's `binary_crossentropy(from_logits=True)` and PyTorch's `BCEWithLogitsLoss`;
    /// gradient `sigmoid(z) - y`; mean over rows and outputs.
    SigmoidCrossEntropy,
    /// The mean over rows and outputs of `|y_hat - y|` (PyTorch's `L1Loss`, Keras's
    /// `mean_absolute_error`); its gradient is `sign(y_hat - y)` with `sign(0) = 0`, as
    /// PyTorch's. Targets are f32 values, one per output.
    MeanAbsoluteError,
    /// The mean over rows and outputs of Huber's loss of `e = y_hat - y`: `e^2 / 2` where
    /// `|e| <= delta`, else `delta (|e| - delta / 2)` (Keras's `Huber(delta)`, PyTorch's
    /// `HuberLoss(delta=delta)`); gradient `clamp(e, -delta, delta)`. `delta` must be finite
    /// and positive; [`Loss::huber`] gives the usual 1.0.
    Huber {
        /// Where the loss turns from quadratic to linear.
        delta: f32,
    },
}

impl Loss {
    /// The metrics this loss reports for each pass, by name, in order: the training ones as
    /// they are, the validation ones with a `val_` prefix.
    pub fn metric_names(&self) -> &'static [&'static str] {
        match self {
            Loss::SoftmaxCrossEntropy => &["loss", "accuracy"],
            Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber { .. } => {
                &["loss", "mae", "rmse", "r2"]
            }
            Loss::SigmoidCrossEntropy => &["loss", "binary_accuracy"],
        }
    }

    /// Huber's loss with Keras's and PyTorch's default `delta` of 1.0.
    pub fn huber() -> Self {
        Loss::Huber { delta: DEFAULT_HUBER_DELTA }
    }

    /// Whether the loss regresses on f32 values (its targets are `Targets::Values`).
    pub fn is_regression(&self) -> bool {
        matches!(self, Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber { .. })
    }

    /// [`Error::Config`] for a Huber `delta` that is not finite and positive.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Loss::Huber { delta } if !(delta.is_finite() && delta > 0.0) => Err(Error::Config(format!(
                "Huber's delta must be finite and positive, got {delta}; Loss::huber() gives 1.0"
            ))),
            _ => Ok(()),
        }
    }

    /// The loss's name in messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Loss::SoftmaxCrossEntropy => "the softmax cross-entropy",
            Loss::MeanSquaredError => "the mean squared error",
            Loss::SigmoidCrossEntropy => "the sigmoid cross-entropy",
            Loss::MeanAbsoluteError => "the mean absolute error",
            Loss::Huber { .. } => "the Huber loss",
        }
    }
}

/// A pixel as every executor sees it: `p / 255`, correctly rounded.
#[inline]
pub fn pixel_value(p: u8) -> f32 {
    f32::from(p) / 255.0
}

/// [`pixel_value`] of every byte: the table the GPU gathers look pixels up in (a shader's own
/// division may not round correctly; a table lookup always gives these bits).
pub fn pixel_lut() -> [f32; 256] {
    std::array::from_fn(|p| pixel_value(p as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How a loss is written in a JSON file (options, model files): snake_case names, Huber
    /// with its delta; each reads back as itself.
    #[test]
    fn losses_read_back_from_their_json() {
        let table = [
            (Loss::SoftmaxCrossEntropy, r#""softmax_cross_entropy""#),
            (Loss::MeanSquaredError, r#""mean_squared_error""#),
            (Loss::SigmoidCrossEntropy, r#""sigmoid_cross_entropy""#),
            (Loss::MeanAbsoluteError, r#""mean_absolute_error""#),
            (Loss::huber(), r#"{"huber":{"delta":1.0}}"#),
        ];
        for (loss, json) in table {
            assert_eq!(serde_json::to_string(&loss).unwrap(), json, "{loss:?}");
            assert_eq!(serde_json::from_str::<Loss>(json).unwrap(), loss, "{json}");
        }
    }

    #[test]
    fn huber_deltas_must_be_finite_and_positive() {
        for (delta, ok) in [
            (1.0, true),
            (1e-3, true),
            (0.0, false),
            (-1.0, false),
            (f32::NAN, false),
            (f32::INFINITY, false),
        ] {
            assert_eq!(Loss::Huber { delta }.validate().is_ok(), ok, "delta {delta}");
        }
        assert_eq!(Loss::huber(), Loss::Huber { delta: 1.0 }, "Keras's and PyTorch's default");
        assert_eq!(Loss::SigmoidCrossEntropy.metric_names(), ["loss", "binary_accuracy"]);
        assert_eq!(Loss::huber().metric_names(), ["loss", "mae", "rmse", "r2"]);
    }
}
