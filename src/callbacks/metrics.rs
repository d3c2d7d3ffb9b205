//! Metrics by name, as Keras's logs hold them: `loss`, `accuracy`, ... and, measured on the
//! validation rows, their `val_` twins. One epoch's values live in an [`EpochMetrics`], which
//! the history, its CSV and JSON, the events and early stopping all read by name, so a new
//! task's metrics (MAE, R², ...) need no new field anywhere.
//!
//! Values keep the order they were set in (the task's order, training before validation), so
//! CSV columns and JSON keys come out the same on every run.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::callbacks::history::json_float;
use crate::cpu::regression_metrics;
use crate::exec::PassSums;
use crate::spec::Loss;

/// The prefix of a metric measured on the validation rows.
pub const VAL_PREFIX: &str = "val_";

/// Named metric values of one epoch or one evaluation, in the order they were set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochMetrics {
    values: Vec<(String, f32)>,
}

impl EpochMetrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `self` with `name` set to `value` (builder form of [`EpochMetrics::set`]).
    pub fn with(mut self, name: &str, value: f32) -> Self {
        self.set(name, value);
        self
    }

    /// Sets `name` to `value`: replaces it where present, else appends it.
    pub fn set(&mut self, name: &str, value: f32) {
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.values.push((name.to_string(), value)),
        }
    }

    /// The value of `name`; `None` when it was not measured (a `val_` metric without
    /// validation rows).
    pub fn get(&self, name: &str) -> Option<f32> {
        self.values.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.values.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no metric was set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The metrics `loss` reports for one pass, names prefixed by `prefix` (`""` or
/// [`VAL_PREFIX`]), in the order of [`Loss::metric_names`].
pub(crate) fn pass_metrics(loss: Loss, out: &mut EpochMetrics, prefix: &str, sums: &PassSums) {
    match loss {
        // The mean loss per row, and the fraction of rows whose largest logit is the label's.
        Loss::SoftmaxCrossEntropy => {
            let (mean, accuracy) = sums.means();
            out.set(&format!("{prefix}loss"), mean);
            out.set(&format!("{prefix}accuracy"), accuracy);
        }
        // The mean squared error per row and output, then MAE, RMSE and R² from the per-output
        // sums (definitions on `regression_metrics`).
        // MAE and Huber's loss report the same metrics from the same sums.
        Loss::MeanSquaredError | Loss::MeanAbsoluteError | Loss::Huber { .. } => {
            let (mean, _) = sums.means();
            let (mae, rmse, r2) = regression_metrics(&sums.task, sums.rows);
            out.set(&format!("{prefix}loss"), mean);
            out.set(&format!("{prefix}mae"), mae);
            out.set(&format!("{prefix}rmse"), rmse);
            out.set(&format!("{prefix}r2"), r2);
        }
        // The mean loss per row (each row's the mean over its outputs), and Keras's
        // BinaryAccuracy: the fraction of (row, output) pairs with `z > 0` exactly when
        // `y = 1`. The executors count `correct` in rows (a row's right outputs / outputs).
        Loss::SigmoidCrossEntropy => {
            let (mean, binary_accuracy) = sums.means();
            out.set(&format!("{prefix}loss"), mean);
            out.set(&format!("{prefix}binary_accuracy"), binary_accuracy);
        }
    }
}

/// As a JSON object in order; NaN and infinities as the strings "NaN", "inf", "-inf" (see
/// `json_float` in the history module) so that they read back.
impl Serialize for EpochMetrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Value(f32);
        impl Serialize for Value {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                json_float::serialize(&self.0, s)
            }
        }
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (name, value) in &self.values {
            map.serialize_entry(name, &Value(*value))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EpochMetrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Value(f32);
        impl<'de> Deserialize<'de> for Value {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                json_float::deserialize(d).map(Value)
            }
        }
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = EpochMetrics;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of metric names and numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EpochMetrics, A::Error> {
                let mut out = EpochMetrics::new();
                while let Some((name, Value(value))) = map.next_entry::<String, Value>()? {
                    if out.get(&name).is_some() {
                        return Err(serde::de::Error::custom(format!("metric `{name}` appears twice")));
                    }
                    out.values.push((name, value));
                }
                Ok(out)
            }
        }
        d.deserialize_map(InOrder)
    }
}
