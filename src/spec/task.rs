//! What the network is trained to do: how inputs reach it and which loss it minimises, with
//! the metrics that loss reports.
//!
//! Inputs are u8 pixels, which every executor sees as `p / 255` ([`pixel_value`]), or f32
//! values seen as they are (the data set's `Features`); targets are class indices or f32
//! values (its `Targets`). The loss reads the last layer's outputs.

use serde::{Deserialize, Serialize};

/// The loss the network's outputs are trained against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

impl Loss {
    /// The metrics this loss reports for each pass, by name, in order: the training ones as
    /// they are, the validation ones with a `val_` prefix.
    pub fn metric_names(&self) -> &'static [&'static str] {
        match self {
            Loss::SoftmaxCrossEntropy => &["loss", "accuracy"],
            Loss::MeanSquaredError => &["loss", "mae", "rmse", "r2"],
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
