//! One pass over a CSV's rows, shared by training and by a schema applied to a new file: the
//! used columns of each row are checked for missing cells (the row dropped or an error),
//! number features parsed straight to f32, categorical and target cells kept as text until
//! their categories and classes are known. Then [`assemble`] lays the features out with
//! one-hot encoding.

use std::collections::BTreeMap;

use csv::StringRecord;

use super::cells::{is_missing, name_list, parse_number, Place};
use super::source::CsvFile;
use super::{Column, MAX_TABLE_BYTES};
use crate::error::Result;

/// Categories listed in full in an "unseen category" message before the list is cut.
const LISTED_CATEGORIES: usize = 20;

/// Which file columns to read: features in schema order (numeric or categorical), then the
/// target columns (possibly none, at prediction).
pub(crate) struct Layout {
    /// `(file column, name, categorical)` per feature column, in schema order.
    pub features: Vec<(usize, String, bool)>,
    /// `(file column, name)` per target column.
    pub target: Vec<(usize, String)>,
}

/// The cells of the rows kept.
pub(crate) struct Scanned {
    /// `[kept, numeric columns]` row-major.
    pub numeric: Vec<f32>,
    /// The text of each categorical column, `[kept]` each, in schema order.
    pub categorical: Vec<Vec<String>>,
    /// The text of each target column, `[kept]` each.
    pub target: Vec<Vec<String>>,
    /// Where each kept row is in the file.
    pub places: Vec<Place>,
    /// Data rows in the file.
    pub rows_read: usize,
    /// Rows left out for a missing cell.
    pub dropped: usize,
}

/// Reads every row. A missing cell drops the row when `drop_missing`, else is an error ending
/// in `missing_hint`. An error too: no data rows, or no rows left after dropping.
pub(crate) fn scan(
    file: &mut CsvFile,
    layout: &Layout,
    drop_missing: bool,
    missing_hint: &str,
) -> Result<Scanned> {
    let categorical_count = layout.features.iter().filter(|f| f.2).count();
    let mut out = Scanned {
        numeric: Vec::new(),
        categorical: vec![Vec::new(); categorical_count],
        target: vec![Vec::new(); layout.target.len()],
        places: Vec::new(),
        rows_read: 0,
        dropped: 0,
    };
    let used =
        || layout.features.iter().map(|(i, n, _)| (*i, n)).chain(layout.target.iter().map(|(i, n)| (*i, n)));
    let mut record = StringRecord::new();
    while let Some(place) = file.next_row(&mut record)? {
        let missing = used().find(|&(i, _)| is_missing(record.get(i).unwrap_or("")));
        if let Some((i, name)) = missing {
            if drop_missing {
                out.dropped += 1;
                continue;
            }
            let cell = record.get(i).unwrap_or("");
            let shown =
                if cell.is_empty() { "is empty".to_string() } else { format!("is missing (`{cell}`)") };
            return Err(file.error(format!("{place}, column `{name}`: the value {shown}; {missing_hint}")));
        }
        let mut k = 0;
        for (i, name, categorical) in &layout.features {
            let cell = record.get(*i).unwrap_or("");
            if *categorical {
                out.categorical[k].push(cell.to_string());
                k += 1;
            } else {
                let value = parse_number(cell).map_err(|why| {
                    let hint = if why == "is not a number" {
                        "; list the column as categorical to one-hot encode it, or fix the value"
                    } else {
                        "; fix the value"
                    };
                    file.error(format!("{place}, column `{name}`: `{cell}` {why}{hint}"))
                })?;
                out.numeric.push(value);
            }
        }
        for (column, (i, _)) in out.target.iter_mut().zip(&layout.target) {
            column.push(record.get(*i).unwrap_or("").to_string());
        }
        out.places.push(place);
    }
    out.rows_read = usize::try_from(file.rows_read()).unwrap_or(usize::MAX);
    if out.rows_read == 0 {
        return Err(file.no_rows());
    }
    if out.places.is_empty() {
        return Err(file.error(format!(
            "all {} rows have a missing value, so none is left; fill in the missing cells",
            out.rows_read
        )));
    }
    Ok(out)
}

/// The features `[kept, width]` row-major, in `columns` order: numbers as read, each
/// categorical column one-hot over its categories. A category not in the column's list is an
/// error naming the file, row, column and value.
pub(crate) fn assemble(file: &CsvFile, columns: &[Column], scanned: &Scanned) -> Result<Vec<f32>> {
    let rows = scanned.places.len();
    let width: usize = columns.iter().map(column_width).sum();
    let numeric_width = columns.iter().filter(|c| matches!(c, Column::Numeric { .. })).count();
    let lookups: Vec<BTreeMap<&str, usize>> = columns
        .iter()
        .filter_map(|c| match c {
            Column::Categorical { categories, .. } => {
                Some(categories.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect())
            }
            Column::Numeric { .. } => None,
        })
        .collect();
    let size = rows.checked_mul(width).filter(|&n| n as u64 <= MAX_TABLE_BYTES / 4).ok_or_else(|| {
        let widest = columns.iter().max_by_key(|c| column_width(c));
        let (name, count) = widest.map_or(("", 0), |c| (c.name(), column_width(c)));
        file.error(format!(
            "{rows} rows x {width} features of f32 is over the {MAX_TABLE_BYTES}-byte limit; the widest \
             column, `{name}`, makes {count} features (a categorical column with very many categories \
             is probably an identifier: leave it out)"
        ))
    })?;
    let mut out = Vec::with_capacity(size);
    for (r, place) in scanned.places.iter().enumerate() {
        let (mut n, mut k) = (0, 0);
        for column in columns {
            match column {
                Column::Numeric { .. } => {
                    out.push(scanned.numeric[r * numeric_width + n]);
                    n += 1;
                }
                Column::Categorical { name, categories } => {
                    let cell = scanned.categorical[k][r].as_str();
                    let Some(&hot) = lookups[k].get(cell) else {
                        return Err(file.error(format!(
                            "{place}, column `{name}`: category `{cell}` was not seen in training \
                             (categories: {})",
                            name_list(categories, LISTED_CATEGORIES)
                        )));
                    };
                    out.extend((0..categories.len()).map(|i| if i == hot { 1.0 } else { 0.0 }));
                    k += 1;
                }
            }
        }
    }
    Ok(out)
}

fn column_width(column: &Column) -> usize {
    match column {
        Column::Numeric { .. } => 1,
        Column::Categorical { categories, .. } => categories.len(),
    }
}
