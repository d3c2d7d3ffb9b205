//! Tabular data from the user's own files: a [`Table`] of f32 features with a class or value
//! target, read from CSV ([`read_csv`]) or NumPy ([`read_npz`], [`read_npy`]), and the
//! [`Schema`] that says how it was encoded so that the same encoding is applied again to new
//! files at predict and evaluate time ([`Schema::read_predict`], [`Schema::read_evaluate`]).
//! [`Standardizer`] scales features (and regression targets) like Keras's `Normalization`.
//!
//! Every problem in a file is an [`crate::Error::File`] naming the file and, for a cell, the
//! data row (1-based, header not counted), the line and the column; nothing here panics on
//! input or prints.
//!
//! ```no_run
//! use wgtrain::data::{read_csv, CsvOptions, Standardizer, validation_split};
//! let table = read_csv("data/tabular/breast_cancer.csv", &CsvOptions::new("diagnosis"))?;
//! let split = validation_split(table.rows(), 0.2, 42)?;
//! let scaler = Standardizer::fit(table.features(), table.width(), &split.train)?;
//! let json = serde_json::to_string(table.schema()).expect("a schema serializes");
//! # Ok::<(), wgtrain::Error>(())
//! ```

mod apply;
mod arrays;
mod cells;
mod csv;
mod npy;
mod scan;
mod schema;
mod source;
mod standardize;
mod target;

pub use self::csv::{read_csv, CsvOptions};
pub use arrays::{read_npy, read_npz};
pub use cells::MISSING_VALUES;
pub use schema::{Column, Schema};
pub use standardize::Standardizer;
pub use target::MAX_INFERRED_CLASSES;

use serde::{Deserialize, Serialize};

use super::{Dataset, Targets};
use crate::error::{Error, Result};

/// The most bytes read for one `.npy` file or `.npz` entry (once decompressed), and the most
/// a CSV's features may take once one-hot encoded: 4 GiB. Checked before reading or
/// allocating, so a file cannot make the reader exhaust memory by what it claims.
pub const MAX_TABLE_BYTES: u64 = 1 << 32;

/// What the target is, which decides the model's last layer and loss.
///
/// When a CSV reader is not told ([`CsvOptions::target_kind`]), it infers the kind the way
/// Keras and scikit-learn users expect (`type_of_target`), with one guard against reading a
/// small-integer regression target as classes, and says why in [`LoadReport::inferred_kind`]:
/// - one column holding any text (a cell that is not a number): classes;
/// - one column of whole numbers (`3` or `3.0`) with at most [`MAX_INFERRED_CLASSES`]
///   distinct values, and at most half as many as rows (or at most two): classes;
/// - any other column of numbers: values (regression);
/// - several columns, every cell 0 or 1: multi-label; otherwise values (multi-output).
///
/// Classes become [`TargetKind::Binary`] when there are exactly two. Give the kind to
/// override: a ratings column 1–5 reads as classes unless told it is values. NumPy arrays
/// say it by dtype instead ([`read_npz`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// One label per row out of three or more classes (or two, when asked for): softmax.
    Classes,
    /// One label per row out of exactly two classes: a single sigmoid output.
    Binary,
    /// Several 0/1 target columns, each its own class: one sigmoid per column.
    MultiLabel,
    /// One or several real-valued target columns: regression.
    Values,
}

impl TargetKind {
    /// The kind's name as it is serialized: `classes`, `binary`, `multi_label`, `values`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Classes => "classes",
            TargetKind::Binary => "binary",
            TargetKind::MultiLabel => "multi_label",
            TargetKind::Values => "values",
        }
    }
}

/// The target of every row, encoded; its names are in the table's [`Schema`].
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `[rows]` class indices into [`Schema::classes`]: kinds [`TargetKind::Classes`] and
    /// [`TargetKind::Binary`].
    Classes(Vec<u32>),
    /// `[rows, outputs]` row-major: the target columns' values ([`TargetKind::Values`]) or
    /// multi-hot 0/1 labels, one per class ([`TargetKind::MultiLabel`]).
    Values(Vec<f32>),
}

/// What a reader did that the caller may want to show: rows dropped, the target kind chosen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Data rows in the file (dropped ones included).
    pub rows_read: usize,
    /// Rows left out because a cell was missing ([`CsvOptions::drop_missing`]).
    pub rows_dropped: usize,
    /// Why the target kind was chosen, when it was inferred rather than given.
    pub inferred_kind: Option<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "read {} rows", self.rows_read)?;
        if self.rows_dropped > 0 {
            write!(f, ", dropped {} with missing values", self.rows_dropped)?;
        }
        if let Some(why) = &self.inferred_kind {
            write!(f, "; target kind inferred: {why}")?;
        }
        Ok(())
    }
}

/// Features `[rows, width]` row-major f32 with a target, and the [`Schema`] naming them.
///
/// Invariants (kept by the readers, the only constructors): `features.len() == rows * width`
/// with `width == schema.width() > 0`; a [`Target::Classes`] has `rows` indices each below
/// `schema.classes().len()`; a [`Target::Values`] has `rows * schema.outputs()` values; every
/// value is finite.
#[derive(Clone, PartialEq)]
pub struct Table {
    schema: Schema,
    features: Vec<f32>,
    rows: usize,
    target: Option<Target>,
    report: LoadReport,
}

impl std::fmt::Debug for Table {
    // The features would be thousands of numbers: print the shape instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Table {{ rows: {}, width: {}, target: {:?} ({}) }}",
            self.rows,
            self.width(),
            self.schema.target_kind(),
            if self.target.is_some() { "present" } else { "absent" }
        )
    }
}

impl Table {
    /// A table from parts the reader has checked against the invariants above.
    pub(crate) fn from_parts(
        schema: Schema,
        features: Vec<f32>,
        rows: usize,
        target: Option<Target>,
        report: LoadReport,
    ) -> Self {
        Table { schema, features, rows, target, report }
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Features per row, after one-hot encoding: `schema().width()`.
    pub fn width(&self) -> usize {
        self.schema.width()
    }

    /// `[rows, width]` row-major.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// `[rows, width]` row-major, to standardize in place ([`Standardizer::apply`]).
    pub fn features_mut(&mut self) -> &mut [f32] {
        &mut self.features
    }

    /// The names of the `width` features, in order (`col=value` for one-hot ones).
    pub fn feature_names(&self) -> &[String] {
        self.schema.feature_names()
    }

    /// The target; `None` only for a file read for prediction without its target columns.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref()
    }

    /// The target, to standardize regression values in place.
    pub fn target_mut(&mut self) -> Option<&mut Target> {
        self.target.as_mut()
    }

    /// How the columns were encoded; save it with the model to read new files the same way.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Rows read and dropped, and why the target kind was chosen.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// The rows as a [`Dataset`] to train or evaluate on (features and target copied):
    /// [`Targets::Classes`] for kinds [`TargetKind::Classes`] and [`TargetKind::Binary`] (two
    /// classes), [`Targets::MultiHot`] with one 0/1 column per class for
    /// [`TargetKind::MultiLabel`], [`Targets::Values`] with [`Schema::outputs`] values per row
    /// for [`TargetKind::Values`]. [`Error::Data`] for a table read without its target.
    pub fn to_dataset(&self) -> Result<Dataset> {
        let targets = match (self.schema.target_kind(), &self.target) {
            (_, None) => {
                return Err(Error::Data(
                    "the table has no target column (it was read for prediction); read it with \
                     its target to train or evaluate on it"
                        .into(),
                ))
            }
            (TargetKind::MultiLabel, Some(Target::Values(values))) => {
                Targets::MultiHot { values: values.clone(), classes: self.schema.classes().len() }
            }
            (_, Some(Target::Classes(labels))) => {
                Targets::Classes { labels: labels.clone(), classes: self.schema.classes().len() }
            }
            (_, Some(Target::Values(values))) => {
                Targets::Values { values: values.clone(), outputs: self.schema.outputs() }
            }
        };
        Dataset::from_values(self.features.clone(), self.width(), targets)
    }

    /// The parts, moved out: schema, features `[rows, width]`, target.
    pub fn into_parts(self) -> (Schema, Vec<f32>, Option<Target>) {
        (self.schema, self.features, self.target)
    }
}
