//! A training [`Schema`] applied to a new file at predict or evaluate time: the columns are
//! matched by name in any order (others ignored), categories and classes encoded as in
//! training, and anything training did not see is an error rather than a silent new column.
//! The file's format follows its extension: `.npz` and `.npy` are NumPy, anything else CSV.

use std::path::Path;

use super::arrays;
use super::scan::{assemble, scan, Layout};
use super::source::CsvFile;
use super::target::{encode, TargetCells};
use super::{Column, LoadReport, Schema, Table};
use crate::error::Result;

/// Whether the file must hold the target columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetNeed {
    /// Prediction: read the target when every target column is there, else leave it out.
    Optional,
    /// Evaluation: every target column must be there.
    Required,
}

impl Schema {
    /// Reads a file to predict on: the features encoded as in training; the target too when
    /// the file has all its columns ([`Table::target`] is `None` otherwise).
    ///
    /// CSV: columns matched by name in any order, extra columns ignored; a missing feature
    /// column, a missing cell, or a category not seen in training is an error naming the
    /// column (and the row and value). `.npz`: the array `x` (and `y` if present), `x` as
    /// wide as [`Schema::width`]; `.npy`: `x` alone.
    pub fn read_predict(&self, path: impl AsRef<Path>) -> Result<Table> {
        self.read(path.as_ref(), TargetNeed::Optional)
    }

    /// Reads a file to evaluate on, like [`Schema::read_predict`] but the target is required
    /// and a class not seen in training is an error. `.npy` has no target: use `.npz` or CSV.
    pub fn read_evaluate(&self, path: impl AsRef<Path>) -> Result<Table> {
        self.read(path.as_ref(), TargetNeed::Required)
    }

    fn read(&self, path: &Path, need: TargetNeed) -> Result<Table> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("npz") => arrays::apply_npz(self, path, need),
            Some("npy") => arrays::apply_npy(self, path, need),
            _ => self.apply_csv(path, need),
        }
    }

    fn apply_csv(&self, path: &Path, need: TargetNeed) -> Result<Table> {
        let mut file = CsvFile::open(path)?;
        let mut features = Vec::with_capacity(self.columns().len());
        for column in self.columns() {
            let index = file.column(column.name(), "feature")?;
            features.push((index, column.name().to_string(), matches!(column, Column::Categorical { .. })));
        }
        let mut target = Vec::new();
        let all_there = self.target_names().iter().all(|n| file.find(n).is_some());
        if all_there || need == TargetNeed::Required {
            for name in self.target_names() {
                target.push((file.column(name, "target")?, name.clone()));
            }
        }
        let layout = Layout { features, target };
        let hint = "fill it in: every row needs a value here";
        let scanned = scan(&mut file, &layout, false, hint)?;
        let features = assemble(&file, self.columns(), &scanned)?;
        let target = if layout.target.is_empty() {
            None
        } else {
            let names = self.target_names();
            let cells =
                TargetCells { file: file.path(), names, cells: &scanned.target, places: &scanned.places };
            Some(encode(&cells, self)?)
        };
        let report = LoadReport { rows_read: scanned.rows_read, rows_dropped: 0, inferred_kind: None };
        Ok(Table::from_parts(self.clone(), features, scanned.places.len(), target, report))
    }
}
