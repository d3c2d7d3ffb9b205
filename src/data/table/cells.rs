//! Rules for single cells, shared by every table reader so that training, prediction and
//! evaluation read a file the same way: which cells count as missing, how a feature cell
//! becomes an `f32`, how a class label is named, how labels and categories are sorted, and
//! how a cell's place is written in an error message.

use std::cmp::Ordering;
use std::fmt;

/// Cells read as missing: pandas' `read_csv` defaults (`na_values`), matched exactly after
/// the surrounding spaces are trimmed. `NA` and the empty cell are the usual ones.
pub const MISSING_VALUES: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
    "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// True for a cell in [`MISSING_VALUES`].
pub(crate) fn is_missing(cell: &str) -> bool {
    MISSING_VALUES.contains(&cell)
}

/// Where a data row sits in its file, for error messages: the data row counts from 1 after
/// the header, the line is the file's line (they differ by one, more with quoted newlines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub row: u64,
    pub line: u64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {} (line {})", self.row, self.line)
    }
}

/// A number cell as an `f32`, or why it is not one (the reason completes "`cell` ...").
pub(crate) fn parse_number(cell: &str) -> Result<f32, &'static str> {
    let value: f64 = cell.parse().map_err(|_| "is not a number")?;
    if !value.is_finite() {
        return Err("is not a finite number");
    }
    let narrow = value as f32;
    if !narrow.is_finite() {
        return Err("is outside the f32 range (about ±3.4e38)");
    }
    Ok(narrow)
}

/// Largest whole number an f64 holds exactly (2^53): beyond it "whole" means nothing.
const MAX_EXACT_WHOLE: f64 = 9_007_199_254_740_992.0;

/// The value of a cell that holds a whole number, written as an integer (`3`, `-1`) or as a
/// float (`3.0`, `1e2`); `None` for anything else.
pub(crate) fn whole_number(cell: &str) -> Option<i64> {
    let value: f64 = cell.parse().ok()?;
    (value.is_finite() && value.fract() == 0.0 && value.abs() <= MAX_EXACT_WHOLE).then_some(value as i64)
}

/// The name of the class a target cell holds: a whole number in its integer form, so that
/// `1`, `1.0` and `1e0` are one class `1` in every file; anything else exactly as written.
pub(crate) fn class_name(cell: &str) -> String {
    match whole_number(cell) {
        Some(n) => n.to_string(),
        None => cell.to_string(),
    }
}

/// Labels (classes or categories) in their canonical order: numerically when every label is
/// an integer (`2` before `10`), otherwise as strings (byte order). Duplicates are removed.
pub(crate) fn sort_labels(labels: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut labels: Vec<String> = labels.into_iter().collect();
    let all_integers = labels.iter().all(|l| l.parse::<i64>().is_ok());
    if all_integers {
        labels.sort_by(|a, b| by_integer(a, b));
    } else {
        labels.sort();
    }
    labels.dedup();
    labels
}

/// Integer order, ties (`01` and `1`) broken by the text so that the order is total.
fn by_integer(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.parse::<i64>().unwrap_or(0), b.parse::<i64>().unwrap_or(0));
    x.cmp(&y).then_with(|| a.cmp(b))
}

/// A list of names for a message, cut after `max` with the count of the rest.
pub(crate) fn name_list(names: &[String], max: usize) -> String {
    let shown: Vec<&str> = names.iter().take(max).map(String::as_str).collect();
    let mut out = shown.join(", ");
    if names.len() > max {
        out.push_str(&format!(", ... ({} in all)", names.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_or_say_why_not() {
        let cases: [(&str, Result<f32, &str>, &str); 7] = [
            ("1.5", Ok(1.5), "a plain float"),
            ("-2", Ok(-2.0), "an integer"),
            ("1e3", Ok(1000.0), "an exponent"),
            ("abc", Err("is not a number"), "text"),
            ("inf", Err("is not a finite number"), "infinity parses but is refused"),
            ("NAN", Err("is not a finite number"), "a NaN spelling pandas does not treat as missing"),
            ("1e39", Err("is outside the f32 range (about ±3.4e38)"), "finite in f64, not in f32"),
        ];
        for (cell, want, why) in cases {
            assert_eq!(parse_number(cell), want, "{why}: `{cell}`");
        }
    }

    #[test]
    fn labels_sort_numerically_only_when_all_are_integers() {
        let cases: [(&[&str], &[&str], &str); 4] = [
            (&["10", "2", "1", "2"], &["1", "2", "10"], "integers, numerically, duplicates removed"),
            (&["b", "a", "10", "2"], &["10", "2", "a", "b"], "mixed: as strings"),
            (&["-1", "0", "-10"], &["-10", "-1", "0"], "negative integers"),
            (&["1.5", "10", "2"], &["1.5", "10", "2"], "a float makes it strings"),
        ];
        for (input, want, why) in cases {
            let got = sort_labels(input.iter().map(|s| s.to_string()));
            assert_eq!(got, want.to_vec(), "{why}");
        }
    }

    #[test]
    fn class_names_fold_whole_numbers() {
        let cases = [("1.0", "1"), ("1e1", "10"), ("-0", "0"), ("1.5", "1.5"), ("cat", "cat"), ("007", "7")];
        for (cell, want) in cases {
            assert_eq!(class_name(cell), want, "class name of `{cell}`");
        }
    }

    #[test]
    fn missing_cells_are_pandas_defaults() {
        for cell in ["", "NA", "NaN", "nan", "null", "NULL", "None", "N/A", "<NA>"] {
            assert!(is_missing(cell), "`{cell}` is missing");
        }
        for cell in ["0", "na", "none", "NAN", "-"] {
            assert!(!is_missing(cell), "`{cell}` is a value, not missing");
        }
    }
}
