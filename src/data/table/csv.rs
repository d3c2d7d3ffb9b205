//! Reading a training table from CSV: [`CsvOptions`] name the target and, optionally, the
//! features and which of them are categorical; [`read_csv`] checks the names against the
//! header, reads the rows, finds each categorical column's categories and the target's
//! classes, and returns a [`Table`] with its [`Schema`].

use std::path::Path;

use super::cells::sort_labels;
use super::scan::{assemble, scan, Layout};
use super::source::CsvFile;
use super::target::{build, TargetCells};
use super::{Column, LoadReport, Schema, Table, TargetKind};
use crate::error::{Error, Result};

/// What to read from a CSV for training. Build it with [`CsvOptions::new`] and the setters,
/// or fill the fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// The target column(s), by header name. Several make a multi-output or multi-label
    /// target.
    pub target: Vec<String>,
    /// The feature columns in the order the model sees them; `None`: every column that is not
    /// a target, in file order.
    pub features: Option<Vec<String>>,
    /// Feature columns to one-hot encode (text or codes): one 0/1 feature per category.
    pub categorical: Vec<String>,
    /// Leave out rows with a missing cell ([`super::MISSING_VALUES`]) in a column read,
    /// counted in [`LoadReport::rows_dropped`]; otherwise such a cell is an error.
    pub drop_missing: bool,
    /// The target's kind; `None`: inferred by the rule in [`TargetKind`]'s docs, the reason
    /// given in [`LoadReport::inferred_kind`].
    pub target_kind: Option<TargetKind>,
}

impl CsvOptions {
    /// Options for a single target column, features all the others.
    pub fn new(target: impl Into<String>) -> Self {
        CsvOptions { target: vec![target.into()], ..CsvOptions::default() }
    }

    /// Sets the target columns (several: multi-output regression or multi-label).
    pub fn targets<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.target = names.into_iter().map(Into::into).collect();
        self
    }

    /// Reads only these feature columns, in this order.
    pub fn features<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.features = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// One-hot encodes these feature columns.
    pub fn categorical<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.categorical = names.into_iter().map(Into::into).collect();
        self
    }

    /// Drops rows with a missing cell instead of failing.
    pub fn drop_missing(mut self, drop: bool) -> Self {
        self.drop_missing = drop;
        self
    }

    /// Gives the target's kind instead of inferring it.
    pub fn target_kind(mut self, kind: TargetKind) -> Self {
        self.target_kind = Some(kind);
        self
    }
}

/// Reads a CSV with a header row into a training [`Table`].
///
/// Number cells may be integers or floats (`1e-3`, surrounding spaces trimmed); a feature
/// that is not a number is an error unless its column is categorical. Errors name the file
/// and, for a cell, its data row (1-based), line and column: an unknown column (listing the
/// columns there are), a missing cell without [`CsvOptions::drop_missing`], a non-finite
/// number, a row with the wrong number of fields, an empty file, a header without rows, a
/// column named twice. [`Error::Config`] for options that contradict each other.
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Table> {
    let mut file = CsvFile::open(path.as_ref())?;
    let layout = layout(&file, options)?;
    let scanned = scan(
        &mut file,
        &layout,
        options.drop_missing,
        "fill it in, or set drop_missing to leave such rows out",
    )?;

    let mut categorical = scanned.categorical.iter();
    let columns: Vec<Column> = layout
        .features
        .iter()
        // Only a categorical column takes the next list of cells (a numeric one before it
        // must not advance the iterator).
        .map(|(_, name, is_categorical)| match is_categorical.then(|| categorical.next()).flatten() {
            Some(cells) => {
                Column::Categorical { name: name.clone(), categories: sort_labels(cells.iter().cloned()) }
            }
            None => Column::Numeric { name: name.clone() },
        })
        .collect();
    let features = assemble(&file, &columns, &scanned)?;

    let names: Vec<String> = layout.target.iter().map(|(_, n)| n.clone()).collect();
    let cells =
        TargetCells { file: file.path(), names: &names, cells: &scanned.target, places: &scanned.places };
    let target = build(&cells, options.target_kind)?;
    let schema = Schema::new(columns, names, target.kind, target.classes).map_err(|why| file.error(why))?;
    let report = LoadReport {
        rows_read: scanned.rows_read,
        rows_dropped: scanned.dropped,
        inferred_kind: target.inferred,
    };
    Ok(Table::from_parts(schema, features, scanned.places.len(), Some(target.target), report))
}

/// The file columns to read, with every name in `options` checked against the header.
fn layout(file: &CsvFile, options: &CsvOptions) -> Result<Layout> {
    if options.target.is_empty() {
        return Err(Error::Config("no target column given; name the column to predict".into()));
    }
    let mut target = Vec::with_capacity(options.target.len());
    for name in &options.target {
        if target.iter().any(|(_, n)| n == name) {
            return Err(Error::Config(format!("target column `{name}` is given twice")));
        }
        target.push((file.column(name, "target")?, name.clone()));
    }
    let is_target = |name: &str| options.target.iter().any(|t| t == name);
    let names: Vec<String> = match &options.features {
        Some(list) => list.clone(),
        None => file.header().iter().filter(|h| !is_target(h)).cloned().collect(),
    };
    if names.is_empty() {
        return Err(file.error("no feature columns: the file has only the target column(s)"));
    }
    let mut features: Vec<(usize, String, bool)> = Vec::with_capacity(names.len());
    for name in names {
        if is_target(&name) {
            return Err(Error::Config(format!("column `{name}` is both a feature and the target")));
        }
        if features.iter().any(|(_, n, _)| *n == name) {
            return Err(Error::Config(format!("feature column `{name}` is given twice")));
        }
        let index = file.column(&name, "feature")?;
        let categorical = options.categorical.contains(&name);
        features.push((index, name, categorical));
    }
    for name in &options.categorical {
        if !features.iter().any(|(_, n, _)| n == name) {
            file.column(name, "categorical")?;
            return Err(Error::Config(format!(
                "`{name}` is listed as categorical but is not a feature column; add it to the features"
            )));
        }
    }
    Ok(Layout { features, target })
}
