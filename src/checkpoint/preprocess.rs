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
            (Loss::SigmoidCrossEntropy, TargetKind::Binary | TargetKind::MultiLabel) => schema.outputs(),
            (loss, TargetKind::Values) if loss.is_regression() => schema.outputs(),
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
        if self.target.is_some() && schema.target_kind() != TargetKind::Values {
            return Err(Error::Data("only a values (regression) target can be standardized".into()));
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

    /// Regression metrics measured in model units, in the target's units: `mae` and `rmse`
    /// (and their `val_` twins) times std, the `loss` of [`Loss::MeanSquaredError`] times std²
    /// and of [`Loss::MeanAbsoluteError`] times std; `r2` is scale-free. Only a one-column target is
    /// standardized (several columns with different scales would mix in the means), so one
    /// std applies. Without a target scaler the metrics are returned as they are; a loss
    /// whose value does not scale with the target (another loss) is left as it is.
    pub fn metrics_in_target_units(&self, loss: Loss, metrics: &EpochMetrics) -> EpochMetrics {
        let Some(std) = self.target.as_ref().and_then(|t| t.std.first().copied()) else {
            return metrics.clone();
        };
        let mut out = EpochMetrics::new();
        for (name, value) in metrics.iter() {
            let base = name.strip_prefix(VAL_PREFIX).unwrap_or(name);
            let factor = match base {
                "loss" if loss == Loss::MeanSquaredError => std * std,
                "loss" if loss == Loss::MeanAbsoluteError => std,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Column;

    fn regression(target: Option<Standardizer>) -> Preprocessing {
        let columns = vec![Column::Numeric { name: "x".into() }];
        let schema = Schema::new(columns, vec!["y".into()], TargetKind::Values, vec![]).unwrap();
        Preprocessing { schema, features: None, target }
    }

    #[test]
    fn metrics_come_back_in_the_targets_units() {
        let metrics = EpochMetrics::new()
            .with("loss", 2.0)
            .with("mae", 1.0)
            .with("rmse", 1.5)
            .with("r2", 0.5)
            .with("val_loss", 4.0)
            .with("val_mae", 2.0);
        let scaled = regression(Some(Standardizer { mean: vec![100.0], std: vec![3.0] }));
        let got = scaled.metrics_in_target_units(Loss::MeanSquaredError, &metrics);
        // (name, expected, why); std 3 is exact in f32, so are the products.
        let cases = [
            ("loss", 18.0, "a squared error scales by std^2"),
            ("mae", 3.0, "an absolute error by std"),
            ("rmse", 4.5, "a root mean square by std"),
            ("r2", 0.5, "R² is scale-free"),
            ("val_loss", 36.0, "val_ twins too"),
            ("val_mae", 6.0, "val_ twins too"),
        ];
        for (name, want, why) in cases {
            assert_eq!(got.get(name), Some(want), "{name}: {why}");
        }
        let names: Vec<&str> = got.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["loss", "mae", "rmse", "r2", "val_loss", "val_mae"], "the order is kept");
        assert_eq!(regression(None).metrics_in_target_units(Loss::MeanSquaredError, &metrics), metrics);
    }
}
