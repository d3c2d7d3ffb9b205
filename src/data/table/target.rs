//! The target columns of a CSV, from text cells to a [`Target`]: the kind inferred when the
//! caller does not give it, the classes found and sorted in training, and the same encoding
//! applied at evaluation, where a class not seen in training is an error.
//!
//! The inference rule is documented on [`TargetKind`]; [`infer`] is its one implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::cells::{class_name, name_list, parse_number, sort_labels, whole_number, Place};
use super::{Schema, Target, TargetKind};
use crate::error::{Error, Result};

/// At most this many distinct whole numbers make an inferred target classes rather than
/// values (the rule is on [`TargetKind`]).
pub const MAX_INFERRED_CLASSES: usize = 20;

/// Classes listed in full in a message before the list is cut.
const LISTED_CLASSES: usize = 20;

/// The target columns' cells of the rows kept, one `Vec` per column, with the rows' places.
pub(crate) struct TargetCells<'a> {
    pub file: &'a Path,
    pub names: &'a [String],
    pub cells: &'a [Vec<String>],
    pub places: &'a [Place],
}

/// A target encoded for training: its kind, classes, values, and why the kind was chosen.
pub(crate) struct Encoded {
    pub kind: TargetKind,
    pub classes: Vec<String>,
    pub target: Target,
    pub inferred: Option<String>,
}

/// Encodes a training target: infers the kind unless `given`, finds and sorts the classes.
/// The class count is checked by [`Schema::new`].
pub(crate) fn build(t: &TargetCells, given: Option<TargetKind>) -> Result<Encoded> {
    let (kind, inferred) = match given {
        Some(kind) => (kind, None),
        None => {
            let (kind, why) = infer(t.cells);
            (kind, Some(why))
        }
    };
    let (classes, target) = match kind {
        TargetKind::Classes | TargetKind::Binary => {
            let [column] = t.cells else {
                return Err(Error::file(
                    t.file,
                    format!(
                        "a {kind:?} target is one column, not {} ({}); use MultiLabel for several 0/1 \
                         columns or Values for several number columns",
                        t.names.len(),
                        t.names.join(", ")
                    ),
                ));
            };
            let classes = sort_labels(column.iter().map(|c| class_name(c)));
            let target = class_indices(t, &classes)?;
            (classes, target)
        }
        TargetKind::MultiLabel => (t.names.to_vec(), multi_hot(t)?),
        TargetKind::Values => (Vec::new(), values(t)?),
    };
    Ok(Encoded { kind, classes, target, inferred })
}

/// Encodes an evaluation target the way `schema` says; a class not in it is an error.
pub(crate) fn encode(t: &TargetCells, schema: &Schema) -> Result<Target> {
    match schema.target_kind() {
        TargetKind::Classes | TargetKind::Binary => class_indices(t, schema.classes()),
        TargetKind::MultiLabel => multi_hot(t),
        TargetKind::Values => values(t),
    }
}

/// The kind of a target, and the reason in words for the load report.
fn infer(cells: &[Vec<String>]) -> (TargetKind, String) {
    if let [column] = cells {
        return infer_one(column);
    }
    if cells.iter().flatten().all(|c| is_zero_or_one(c)) {
        (TargetKind::MultiLabel, format!("multi_label ({} target columns, every cell 0 or 1)", cells.len()))
    } else {
        (TargetKind::Values, format!("values ({} target columns, not all 0/1)", cells.len()))
    }
}

fn infer_one(column: &[String]) -> (TargetKind, String) {
    let classes_of = |count: usize| if count == 2 { TargetKind::Binary } else { TargetKind::Classes };
    if let Some(text) = column.iter().find(|c| c.parse::<f64>().is_err()) {
        let count = column.iter().map(|c| class_name(c)).collect::<BTreeSet<_>>().len();
        let kind = classes_of(count);
        return (kind, format!("{} (text labels such as `{text}`, {count} classes)", kind.as_str()));
    }
    let mut distinct = BTreeSet::new();
    for cell in column {
        let Some(n) = whole_number(cell) else {
            return (TargetKind::Values, format!("values (numbers such as `{cell}` that are not whole)"));
        };
        distinct.insert(n);
        if distinct.len() > MAX_INFERRED_CLASSES {
            return (
                TargetKind::Values,
                format!("values (whole numbers with more than {MAX_INFERRED_CLASSES} distinct values)"),
            );
        }
    }
    let count = distinct.len();
    if count > 2 && count * 2 > column.len() {
        return (
            TargetKind::Values,
            format!("values ({count} distinct whole numbers in {} rows, more than half)", column.len()),
        );
    }
    let kind = classes_of(count);
    (
        kind,
        format!(
            "{} ({count} distinct whole numbers, at most {MAX_INFERRED_CLASSES} and at most half the rows)",
            kind.as_str()
        ),
    )
}

fn is_zero_or_one(cell: &str) -> bool {
    matches!(cell.parse::<f64>(), Ok(v) if v == 0.0 || v == 1.0)
}

/// `[rows]` indices into `classes` of a one-column target.
fn class_indices(t: &TargetCells, classes: &[String]) -> Result<Target> {
    let index: BTreeMap<&str, u32> = classes.iter().zip(0u32..).map(|(c, i)| (c.as_str(), i)).collect();
    let column = t.cells.first().map_or(&[][..], Vec::as_slice);
    let mut out = Vec::with_capacity(column.len());
    for (cell, place) in column.iter().zip(t.places) {
        let name = class_name(cell);
        let Some(&i) = index.get(name.as_str()) else {
            return Err(Error::file(
                t.file,
                format!(
                    "{place}, target column `{}`: class `{cell}` was not seen in training (classes: {})",
                    t.names[0],
                    name_list(classes, LISTED_CLASSES)
                ),
            ));
        };
        out.push(i);
    }
    Ok(Target::Classes(out))
}

/// `[rows, columns]` 0/1 labels.
fn multi_hot(t: &TargetCells) -> Result<Target> {
    each_cell(t, |cell| match cell.parse::<f64>() {
        Ok(v) if v == 0.0 || v == 1.0 => Ok(v as f32),
        _ => Err("is not 0 or 1, as a multi-label target needs".to_string()),
    })
}

/// `[rows, columns]` finite values.
fn values(t: &TargetCells) -> Result<Target> {
    each_cell(t, |cell| {
        parse_number(cell).map_err(|why| {
            format!(
                "{why}, but a values (regression) target needs numbers; pass TargetKind::Classes for labels"
            )
        })
    })
}

/// Applies `f` to every cell, row-major; its error completes "`cell` ...".
fn each_cell(t: &TargetCells, f: impl Fn(&str) -> Result<f32, String>) -> Result<Target> {
    let rows = t.places.len();
    let mut out = Vec::with_capacity(rows.saturating_mul(t.cells.len()));
    for (r, place) in t.places.iter().enumerate() {
        for (column, name) in t.cells.iter().zip(t.names) {
            let cell = column.get(r).map_or("", String::as_str);
            let value = f(cell).map_err(|why| {
                Error::file(t.file, format!("{place}, target column `{name}`: `{cell}` {why}"))
            })?;
            out.push(value);
        }
    }
    Ok(Target::Values(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inference_follows_the_documented_rule() {
        let ten: Vec<String> = (0..40).map(|i| (i % 10).to_string()).collect();
        let many: Vec<String> = (0..100).map(|i| (i % 30).to_string()).collect();
        let cases: Vec<(Vec<Vec<String>>, TargetKind, &str)> = vec![
            (vec![column(&["a", "b", "a"])], TargetKind::Binary, "two text labels"),
            (vec![column(&["a", "b", "c"])], TargetKind::Classes, "three text labels"),
            (vec![column(&["1", "x", "2"])], TargetKind::Classes, "one text cell makes labels"),
            (vec![column(&["0", "1", "1", "0"])], TargetKind::Binary, "0/1"),
            (vec![column(&["0.0", "1.0", "1.0"])], TargetKind::Binary, "0/1 written as floats"),
            (vec![ten], TargetKind::Classes, "10 whole numbers in 40 rows"),
            (vec![many], TargetKind::Values, "30 distinct whole numbers: over 20"),
            (vec![column(&["1", "2", "3", "4"])], TargetKind::Values, "4 distinct in 4 rows: over half"),
            (vec![column(&["1.5", "2", "2"])], TargetKind::Values, "a fraction"),
            (vec![column(&["0", "1"]), column(&["1", "1"])], TargetKind::MultiLabel, "columns of 0/1"),
            (vec![column(&["0", "2"]), column(&["1", "1"])], TargetKind::Values, "several numbers"),
        ];
        for (cells, want, why) in cases {
            let (kind, reason) = infer(&cells);
            assert_eq!(kind, want, "{why} (reason given: {reason})");
            assert!(reason.starts_with(want.as_str()), "the reason names the kind: {reason}");
        }
    }
}
