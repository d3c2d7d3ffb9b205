//! [`Preprocessing`]: how a model's raw table rows become its inputs and its outputs go back
//! to the target's units. Saved with the model (JSON in its metadata) so that `evaluate` and
//! `predict` on a new file read the columns by name, one-hot encode them with the training
//! categories, scale them with the training statistics, and turn outputs into class names or
//! values in the target's units, exactly as in training.

use serde::{Deserialize, Serialize};

use crate::callbacks::metrics::{EpochMetrics, VAL_PREFIX};
use crate::data::{Dataset, Schema, Standardizer, Table, Target, TargetKind};
use crate::error::{Error, Result};
use crate::spec::{Loss, Network};

/// The encoding of a model's table: its [`Schema`] (feature columns in order, categories,
/// target columns, target kind, classes), the feature standardization fitted on the training
/// rows, and the target standardization of a regression model trained on standardized values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// The columns, categories and classes, as the training file was read.
    pub schema: Schema,
    /// `(x - mean) / std` per feature, `[schema.width()]`; `None`: features as read.
    pub features: Option<Standardizer>,
    /// `(y - mean) / std` per target value, `[schema.outputs()]`, applied in training and
    /// undone on predictions; `None`: the model predicts the target's own units.
    pub target: Option<Standardizer>,
}

impl Preprocessing {
    /// Checks that the parts fit each other and a model of `spec` trained with `loss`: the
    /// widths, the output count, every mean finite and every std positive and finite.
    /// [`Error::Shape`] or [`Error::Data`] saying which part is off.
    pub fn check(&self, spec: &Network, loss: Loss) -> Result<()> {
        let schema = &self.schema;
        if spec.inputs() != schema.width() {
            return Err(Error::Shape(format!(
                "the model takes {} inputs but its table encoding makes {} features",
                spec.inputs(),
                schema.width()
            )));
        }
        let outputs = match (loss, schema.target_kind()) {
            (Loss::SoftmaxCrossEntropy, TargetKind::Classes | TargetKind::Binary) => schema.classes().len(),
            (Loss::MeanSquaredError, TargetKind::Values) => schema.outputs(),
            (loss, kind) => {
                return Err(Error::Shape(format!(
                    "a {kind:?} target cannot be trained with {loss:?}; the model's loss and \
                     table encoding disagree"
                )))
            }
        };
        if spec.outputs() != outputs {
            return Err(Error::Shape(format!(
                "the model outputs {} values but its {:?} target needs {outputs}",
                spec.outputs(),
                schema.target_kind()
            )));
        }
        check_standardizer("feature", self.features.as_ref(), schema.width())?;
        check_standardizer("target", self.target.as_ref(), schema.outputs())?;
        if self.target.is_some() && loss != Loss::MeanSquaredError {
            return Err(Error::Data("only a regression target can be standardized".into()));
        }
        Ok(())
    }

    /// The table's rows as a [`Dataset`] in model units: features standardized, a
    /// regression target standardized. The table must have its target (read for training or
    /// with [`Schema::read_evaluate`]).
    pub fn dataset(&self, table: &Table) -> Result<Dataset> {
        let mut table = table.clone();
        self.scale_features(table.features_mut())?;
        if let (Some(scaler), Some(Target::Values(values))) = (&self.target, table.target_mut()) {
            scaler.apply(values)?;
        }
        table.to_dataset()
    }

    /// Standardizes features `[rows, width]` in place (nothing without a feature scaler).
    pub fn scale_features(&self, features: &mut [f32]) -> Result<()> {
        match &self.features {
            Some(scaler) => scaler.apply(features),
            None => Ok(()),
        }
    }

    /// Brings model outputs `[rows, outputs]` back to the target's units in place.
    pub fn unscale_target(&self, outputs: &mut [f32]) -> Result<()> {
        match &self.target {
            Some(scaler) => scaler.invert(outputs),
            None => Ok(()),
        }
    }

    /// Regression metrics measured in model units, in the target's units: `loss` (the mean
    /// squared error) times std², `mae` and `rmse` (and their `val_` twins) times std; `r2`
    /// is scale-free. Only a one-column target is standardized (several columns with
    /// different scales would mix in the means), so one std applies; without a target
    /// scaler the metrics are returned as they are.
    pub fn metrics_in_target_units(&self, metrics: &EpochMetrics) -> EpochMetrics {
        let Some(std) = self.target.as_ref().and_then(|t| t.std.first().copied()) else {
            return metrics.clone();
        };
        let mut out = EpochMetrics::new();
        for (name, value) in metrics.iter() {
            let base = name.strip_prefix(VAL_PREFIX).unwrap_or(name);
            let factor = match base {
                "loss" => std * std,
                "mae" | "rmse" => std,
                _ => 1.0,
            };
            out.set(name, value * factor);
        }
        out
    }
}

fn check_standardizer(what: &str, scaler: Option<&Standardizer>, width: usize) -> Result<()> {
    let Some(s) = scaler else { return Ok(()) };
    if s.mean.len() != width || s.std.len() != width {
        return Err(Error::Shape(format!(
            "the {what} standardizer has {} means and {} stds for {width} columns",
            s.mean.len(),
            s.std.len()
        )));
    }
    if let Some(c) = s.mean.iter().position(|m| !m.is_finite()) {
        return Err(Error::Data(format!("the {what} standardizer's mean {c} is {}", s.mean[c])));
    }
    if let Some(c) = s.std.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(Error::Data(format!("the {what} standardizer's std {c} is {}", s.std[c])));
    }
    if what == "target" && width != 1 {
        return Err(Error::Data(format!(
            "a standardized target has one column, not {width}; save several target columns unscaled"
        )));
    }
    Ok(())
}
