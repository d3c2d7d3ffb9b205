//! Predicting on a raw table: a file's columns matched by name (any order, extra ones
//! ignored) and encoded with the model's saved [`Preprocessing`], its outputs turned into class
//! names or values in the target's units. The reading, with its errors naming the file, row and
//! column (a missing column, a category not seen in training), is the table reader's
//! ([`crate::data::Schema::read_predict`]).

use std::path::Path;

use super::predict::Model;
use super::preprocess::Preprocessing;
use crate::data::{Table, TargetKind};
use crate::error::{Error, Result};
use crate::spec::Loss;

/// The predictions for every row of a table, in row order.
#[derive(Debug, Clone, PartialEq)]
pub enum TablePrediction {
    /// A classifier's: the most probable class of each row by name, and the probabilities.
    Classes {
        /// The target column's name.
        target: String,
        /// The class names, as in the training file (integers in their integer form).
        classes: Vec<String>,
        /// `[rows]`: the most probable class of each row (the first on ties).
        labels: Vec<String>,
        /// `[rows, classes]` row-major softmax probabilities.
        probabilities: Vec<f32>,
    },
    /// A multi-label model's: for each row and label, whether the label applies (its
    /// probability above 0.5), and the probabilities.
    Labels {
        /// The label names: the target columns.
        names: Vec<String>,
        /// `[rows, names.len()]` row-major: the label applies.
        applies: Vec<bool>,
        /// `[rows, names.len()]` row-major sigmoid probabilities.
        probabilities: Vec<f32>,
    },
    /// A regression model's: `[rows, names.len()]` row-major values in the target's units.
    Values {
        /// The target columns' names.
        names: Vec<String>,
        /// The predicted values.
        values: Vec<f32>,
    },
}

impl TablePrediction {
    /// Rows predicted.
    pub fn rows(&self) -> usize {
        match self {
            TablePrediction::Classes { labels, .. } => labels.len(),
            TablePrediction::Labels { names, applies, .. } => applies.len() / names.len().max(1),
            TablePrediction::Values { names, values } => values.len() / names.len().max(1),
        }
    }
}

impl Model {
    /// Reads `path` (CSV, or NumPy by extension) with the saved encoding and predicts every
    /// row. Errors name the file, and the row and column of a bad cell; a model saved without
    /// its preprocessing (an MNIST model) is [`Error::Config`].
    pub fn predict_file(&self, path: impl AsRef<Path>) -> Result<TablePrediction> {
        let table = self.table_preprocessing()?.schema.read_predict(path)?;
        self.predict_table(&table)
    }

    /// Predicts every row of a table read with this model's schema (its features as read,
    /// not yet standardized).
    pub fn predict_table(&self, table: &Table) -> Result<TablePrediction> {
        let prep = self.table_preprocessing()?;
        if table.schema().columns() != prep.schema.columns() {
            return Err(Error::Shape(
                "the table was not read with this model's schema; read it with \
                 model.preprocessing().schema.read_predict"
                    .into(),
            ));
        }
        let mut x = table.features().to_vec();
        prep.scale_features(&mut x)?;
        match self.loss() {
            loss if loss.is_regression() => Ok(TablePrediction::Values {
                names: prep.schema.target_names().to_vec(),
                values: self.predict_values(&x)?,
            }),
            Loss::SigmoidCrossEntropy if prep.schema.target_kind() == TargetKind::MultiLabel => {
                let p = self.predict(&x)?;
                let applies = p.probabilities.iter().map(|&q| q > 0.5).collect();
                let names = prep.schema.classes().to_vec();
                Ok(TablePrediction::Labels { names, applies, probabilities: p.probabilities })
            }
            _ => {
                let p = self.predict(&x)?;
                let classes = prep.schema.classes().to_vec();
                let labels = p.labels.iter().map(|&l| classes[l].clone()).collect();
                let target = prep.schema.target_names().join(",");
                Ok(TablePrediction::Classes { target, classes, labels, probabilities: p.probabilities })
            }
        }
    }

    fn table_preprocessing(&self) -> Result<&Preprocessing> {
        self.preprocessing().ok_or_else(|| {
            Error::Config(
                "this model was saved without its table encoding (trained on arrays, as the MNIST \
                 demo's); predict on arrays with Model::predict, or retrain it with wgtrain fit"
                    .into(),
            )
        })
    }
}
