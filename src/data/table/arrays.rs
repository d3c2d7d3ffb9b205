//! Tables from NumPy arrays: features from a 2-D array `x` `[rows, features]` (float, or
//! integer converted to f32), the target from `y`: a 1-D integer array is class labels
//! (binary when there are two), a 2-D integer array of 0/1 is multi-label, a 1-D or 2-D
//! float array is values. Arrays carry no names, so features are called `x0`, `x1`, ... and
//! targets `y` (1-D) or `y0`, `y1`, ... (2-D). Messages index cells as NumPy does, from 0.

use std::path::Path;

use super::apply::TargetNeed;
use super::cells::{class_name, name_list, sort_labels};
use super::npy::{read_npy_file, read_npz_file, Array, Data};
use super::{Column, LoadReport, Schema, Table, Target, TargetKind};
use crate::error::{Error, Result};

/// Reads a training table from an `.npz` holding arrays `x` (features) and `y` (target), as
/// written by `numpy.savez(path, x=features, y=target)`.
///
/// Errors name the file and the array: a missing array, a dtype that is not float, integer
/// or bool, `x` not 2-D, `y` not 1-D or 2-D, a row count of `y` unlike `x`'s, a non-finite
/// feature, a 2-D integer `y` holding values other than 0 and 1.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let (x, y) = read_npz_file(path)?;
    let y = y.ok_or_else(|| {
        Error::file(path, "no array `y`; save the target with the features, numpy.savez(path, x=..., y=...)")
    })?;
    train_table(path, path, &x, &y)
}

/// Reads a training table from two `.npy` files, the features `[rows, features]` and the
/// target (see [`read_npz`] for the rules and errors).
pub fn read_npy(x_path: impl AsRef<Path>, y_path: impl AsRef<Path>) -> Result<Table> {
    let (x_path, y_path) = (x_path.as_ref(), y_path.as_ref());
    let x = read_npy_file(x_path, "x")?;
    let y = read_npy_file(y_path, "y")?;
    train_table(x_path, y_path, &x, &y)
}

fn train_table(x_path: &Path, y_path: &Path, x: &Array, y: &Array) -> Result<Table> {
    let (features, rows, width) = features(x_path, x)?;
    check_rows(y_path, y, rows)?;
    let columns = (0..width).map(|i| Column::Numeric { name: format!("x{i}") }).collect();
    let names = match y.shape.as_slice() {
        [_] => vec!["y".to_string()],
        [_, outputs] => (0..*outputs).map(|i| format!("y{i}")).collect(),
        _ => return Err(rank_error(y_path, y)),
    };
    let (kind, classes, target, why) = match &y.data {
        Data::Int(labels) if y.shape.len() == 1 => {
            let classes = sort_labels(labels.iter().map(i64::to_string));
            let kind = if classes.len() == 2 { TargetKind::Binary } else { TargetKind::Classes };
            let target = class_indices(y_path, labels.iter().map(|l| l.to_string()), &classes)?;
            let why = format!("y is 1-D integer, {} classes", classes.len());
            (kind, classes, target, why)
        }
        Data::Int(labels) => {
            if let Some(at) = labels.iter().position(|&l| l != 0 && l != 1) {
                return Err(Error::file(
                    y_path,
                    format!(
                        "array `y` is 2-D integer, read as multi-label 0/1, but y{} = {}; save a \
                         multi-output regression target as float",
                        index(at, &y.shape),
                        labels[at]
                    ),
                ));
            }
            let target = Target::Values(labels.iter().map(|&l| l as f32).collect());
            (TargetKind::MultiLabel, names.clone(), target, "y is 2-D integer 0/1".to_string())
        }
        Data::Float(values) => (
            TargetKind::Values,
            Vec::new(),
            Target::Values(finite(y_path, "y", values, &y.shape)?),
            "y is float".into(),
        ),
    };
    let schema = Schema::new(columns, names, kind, classes).map_err(|why| Error::file(y_path, why))?;
    let report = LoadReport {
        rows_read: rows,
        rows_dropped: 0,
        inferred_kind: Some(format!("{} ({why})", kind.as_str())),
    };
    Ok(Table::from_parts(schema, features, rows, Some(target), report))
}

/// `.npz` at predict or evaluate time: `x` as wide as the schema, `y` encoded by it.
pub(crate) fn apply_npz(schema: &Schema, path: &Path, need: TargetNeed) -> Result<Table> {
    let (x, y) = read_npz_file(path)?;
    if y.is_none() && need == TargetNeed::Required {
        return Err(Error::file(
            path,
            "no array `y`; evaluation needs the target, numpy.savez(path, x=..., y=...)",
        ));
    }
    apply_arrays(schema, path, &x, y.as_ref())
}

/// `.npy` at predict time: `x` alone.
pub(crate) fn apply_npy(schema: &Schema, path: &Path, need: TargetNeed) -> Result<Table> {
    if need == TargetNeed::Required {
        return Err(Error::file(
            path,
            "a .npy holds one array, the features; evaluate on an .npz with arrays x and y, or a CSV",
        ));
    }
    let x = read_npy_file(path, "x")?;
    apply_arrays(schema, path, &x, None)
}

fn apply_arrays(schema: &Schema, path: &Path, x: &Array, y: Option<&Array>) -> Result<Table> {
    let (features, rows, width) = features(path, x)?;
    if width != schema.width() {
        return Err(Error::file(
            path,
            format!(
                "array `x` has {width} columns but the model reads {} features ({})",
                schema.width(),
                name_list(schema.feature_names(), 10)
            ),
        ));
    }
    let target = match y {
        Some(y) => Some(schema_target(path, schema, y, rows)?),
        None => None,
    };
    let report = LoadReport { rows_read: rows, rows_dropped: 0, inferred_kind: None };
    Ok(Table::from_parts(schema.clone(), features, rows, target, report))
}

/// `y` encoded as `schema` says: labels mapped to its classes, values of its width.
fn schema_target(path: &Path, schema: &Schema, y: &Array, rows: usize) -> Result<Target> {
    check_rows(path, y, rows)?;
    let outputs = schema.outputs();
    let expect = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(Error::file(path, format!("array `y` has shape {:?}; the model expects {what}", y.shape)))
        }
    };
    match schema.target_kind() {
        TargetKind::Classes | TargetKind::Binary => {
            expect(y.shape.len() == 1, "[rows] class labels")?;
            let labels: Vec<String> = match &y.data {
                Data::Int(v) => v.iter().map(i64::to_string).collect(),
                Data::Float(v) => v.iter().map(|f| class_name(&f.to_string())).collect(),
            };
            class_indices(path, labels.into_iter(), schema.classes())
        }
        TargetKind::MultiLabel | TargetKind::Values => {
            let shape_ok = match y.shape.as_slice() {
                [_] => outputs == 1,
                [_, n] => *n == outputs,
                _ => false,
            };
            expect(shape_ok, &format!("[rows, {outputs}] ({})", schema.target_names().join(", ")))?;
            let values: Vec<f64> = match &y.data {
                Data::Int(v) => v.iter().map(|&i| i as f64).collect(),
                Data::Float(v) => v.clone(),
            };
            let multi = schema.target_kind() == TargetKind::MultiLabel;
            if let Some(at) = values.iter().position(|&v| multi && v != 0.0 && v != 1.0) {
                let why = format!(
                    "y{} = {} is not 0 or 1, as a multi-label target needs",
                    index(at, &y.shape),
                    values[at]
                );
                return Err(Error::file(path, format!("array `y`: {why}")));
            }
            Ok(Target::Values(finite(path, "y", &values, &y.shape)?))
        }
    }
}

/// `x` as f32 `[rows, width]`: 2-D, at least one row and column, every value finite.
fn features(path: &Path, x: &Array) -> Result<(Vec<f32>, usize, usize)> {
    let &[rows, width] = x.shape.as_slice() else {
        return Err(Error::file(
            path,
            format!("array `x` has shape {:?}; expected a 2-D array [rows, features]", x.shape),
        ));
    };
    if rows == 0 || width == 0 {
        return Err(Error::file(
            path,
            format!("array `x` has shape {:?}; it needs rows and features", x.shape),
        ));
    }
    let values = match &x.data {
        Data::Float(v) => finite(path, "x", v, &x.shape)?,
        // Integers beyond 2^24 round to the nearest f32, as they would in numpy's astype.
        Data::Int(v) => v.iter().map(|&i| i as f32).collect(),
    };
    Ok((values, rows, width))
}

/// f64s narrowed to f32, each finite in f32.
fn finite(path: &Path, name: &str, values: &[f64], shape: &[usize]) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(values.len());
    for (at, &v) in values.iter().enumerate() {
        let narrow = v as f32;
        if !narrow.is_finite() {
            return Err(Error::file(
                path,
                format!("array `{name}`: {name}{} = {v} is not a finite f32; replace it", index(at, shape)),
            ));
        }
        out.push(narrow);
    }
    Ok(out)
}

fn check_rows(path: &Path, y: &Array, rows: usize) -> Result<()> {
    match y.shape.first() {
        Some(&n) if n == rows && y.shape.len() <= 2 => Ok(()),
        Some(&n) if y.shape.len() <= 2 => Err(Error::file(
            path,
            format!("array `x` has {rows} rows but `y` has {n}; they need one row per sample"),
        )),
        _ => Err(rank_error(path, y)),
    }
}

fn rank_error(path: &Path, y: &Array) -> Error {
    Error::file(
        path,
        format!(
            "array `y` ({}) has shape {:?}; expected [rows] labels or values, or [rows, outputs]",
            y.family(),
            y.shape
        ),
    )
}

/// Labels mapped to their index in `classes`; an unknown one is an error naming it.
fn class_indices(path: &Path, labels: impl Iterator<Item = String>, classes: &[String]) -> Result<Target> {
    let lookup: std::collections::BTreeMap<&str, u32> =
        classes.iter().zip(0u32..).map(|(c, i)| (c.as_str(), i)).collect();
    let mut out = Vec::new();
    for (row, label) in labels.enumerate() {
        let Some(&i) = lookup.get(label.as_str()) else {
            return Err(Error::file(
                path,
                format!(
                    "array `y`: y[{row}] = {label} is a class not seen in training (classes: {})",
                    name_list(classes, 20)
                ),
            ));
        };
        out.push(i);
    }
    Ok(Target::Classes(out))
}

/// A flat index as NumPy writes it: `[3]` or `[3, 1]`.
fn index(at: usize, shape: &[usize]) -> String {
    match shape {
        [_, cols] if *cols > 0 => format!("[{}, {}]", at / cols, at % cols),
        _ => format!("[{at}]"),
    }
}
