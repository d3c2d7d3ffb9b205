//! A CSV file read row by row with its header checked first: the one place that knows the
//! `csv` crate's settings and turns its errors, ragged rows, an empty file and duplicate
//! column names into one-line [`Error::File`]s naming the file, the row and the line.
//!
//! Settings: comma-separated, a header row required, spaces around each field trimmed,
//! blank lines skipped, double quotes for fields holding commas or newlines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use csv::{ReaderBuilder, StringRecord, Trim};

use super::cells::{name_list, Place};
use crate::error::{Error, Result};

/// Columns listed in full in a "no such column" message before the list is cut.
const LISTED_COLUMNS: usize = 40;

/// An open CSV file positioned after its header.
pub(crate) struct CsvFile {
    path: PathBuf,
    header: Vec<String>,
    reader: csv::Reader<std::fs::File>,
    rows: u64,
}

impl CsvFile {
    /// Opens `path` and reads its header: an error if the file is empty or names a column
    /// twice.
    pub fn open(path: &Path) -> Result<Self> {
        let mut reader = ReaderBuilder::new()
            .has_headers(true)
            .flexible(true) // field counts are checked here, to word the error
            .trim(Trim::All)
            .from_path(path)
            .map_err(|e| csv_error(path, e))?;
        let header: Vec<String> =
            reader.headers().map_err(|e| csv_error(path, e))?.iter().map(str::to_string).collect();
        if header.is_empty() {
            return Err(Error::file(path, "the file is empty; a CSV needs a header row naming its columns"));
        }
        let mut seen = BTreeMap::new();
        for (i, name) in header.iter().enumerate() {
            if let Some(first) = seen.insert(name.as_str(), i) {
                return Err(Error::file(
                    path,
                    format!(
                        "the header names column `{name}` twice (columns {} and {}); rename one",
                        first + 1,
                        i + 1
                    ),
                ));
            }
        }
        Ok(CsvFile { path: path.to_path_buf(), header, reader, rows: 0 })
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The column names, in file order.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The position of column `name`, if the header has it.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The position of column `name`, or an error naming it and listing the columns there are.
    pub fn column(&self, name: &str, role: &str) -> Result<usize> {
        self.find(name).ok_or_else(|| {
            Error::file(
                &self.path,
                format!(
                    "no {role} column `{name}`; the columns are: {}",
                    name_list(&self.header, LISTED_COLUMNS)
                ),
            )
        })
    }

    /// Data rows read so far (the header not counted).
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// Reads the next data row into `record` and returns its place; `None` at the end. A row
    /// with more or fewer fields than the header is an error.
    pub fn next_row(&mut self, record: &mut StringRecord) -> Result<Option<Place>> {
        if !self.reader.read_record(record).map_err(|e| csv_error(&self.path, e))? {
            return Ok(None);
        }
        self.rows += 1;
        let line = record.position().map_or(self.rows + 1, |p| p.line());
        let place = Place { row: self.rows, line };
        if record.len() != self.header.len() {
            return Err(Error::file(
                &self.path,
                format!(
                    "{place} has {} fields but the header has {}; check for a missing or extra comma",
                    record.len(),
                    self.header.len()
                ),
            ));
        }
        Ok(Some(place))
    }

    /// The error for a file whose header is not followed by any data row.
    pub fn no_rows(&self) -> Error {
        Error::file(&self.path, "the file has a header but no data rows; a table needs at least one row")
    }

    /// An [`Error::File`] for this file.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::file(&self.path, reason)
    }
}

/// The `csv` crate's error as a one-line [`Error::File`] with the line where it has one.
fn csv_error(path: &Path, err: csv::Error) -> Error {
    let at = err.position().map_or(String::new(), |p| format!("line {}: ", p.line()));
    if let csv::ErrorKind::Utf8 { .. } = err.kind() {
        return Error::file(path, format!("{at}the text is not valid UTF-8; save the file as UTF-8"));
    }
    let message = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(e) => Error::io(path, e),
        _ => Error::file(path, format!("{at}cannot read the CSV: {message}")),
    }
}
