//! [`Dataset`]: rows of features with their targets, checked once when built and immutable
//! after, so every executor can trust its shape.
//!
//! Features come in two forms of the same thing: u8 pixels (images, a quarter of the memory of
//! f32, seen by the model as `pixel / 255`) or f32 values as given (tables, sensor readings).
//! Targets are class indices (`u32`, any number of classes), f32 values (regression,
//! `[rows, outputs]`) or multi-hot rows of 0 and 1 (multi-label, `[rows, classes]`).

use crate::error::{Error, Result};
use crate::spec::pixel_value;

/// The features of every row, `[rows, width]` row-major.
#[derive(Clone, PartialEq)]
pub enum Features {
    /// u8 pixels; the model sees each as `p / 255` ([`pixel_value`]).
    Pixels(Vec<u8>),
    /// f32 values, seen as they are; all finite.
    Values(Vec<f32>),
}

impl Features {
    fn len(&self) -> usize {
        match self {
            Features::Pixels(p) => p.len(),
            Features::Values(v) => v.len(),
        }
    }
}

/// What each row should be mapped to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Targets {
    /// One class index per row, each below `classes`.
    Classes {
        /// `[rows]`.
        labels: Vec<u32>,
        /// How many classes there are (at least 2).
        classes: usize,
    },
    /// Real values to regress on, `[rows, outputs]` row-major; all finite.
    Values {
        /// `[rows, outputs]` row-major.
        values: Vec<f32>,
        /// Target values per row (at least 1).
        outputs: usize,
    },
    /// Multi-label targets: for each row and class, 1.0 when the row has that class and 0.0
    /// when not, `[rows, classes]` row-major (the sigmoid cross-entropy's targets; one column
    /// is a binary problem). Any other value is refused when the data set is built.
    MultiHot {
        /// `[rows, classes]` row-major, each 0.0 or 1.0.
        values: Vec<f32>,
        /// Classes per row (at least 1).
        classes: usize,
    },
}

/// Rows of features and their targets.
///
/// Invariants, checked by every constructor and kept by the private fields: `width > 0`, at
/// least one row, `features == rows * width`, every feature value finite; for classes,
/// `classes >= 2` and every label `< classes`; for values, `outputs >= 1`,
/// `values == rows * outputs` and every value finite; for multi-hot, `classes >= 1`,
/// `values == rows * classes` and every value 0.0 or 1.0.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    features: Features,
    width: usize,
    targets: Targets,
}

impl std::fmt::Debug for Dataset {
    // The features would be millions of numbers: print the shape instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.features {
            Features::Pixels(_) => "u8 pixels",
            Features::Values(_) => "f32 values",
        };
        match &self.targets {
            Targets::Classes { classes, .. } => write!(
                f,
                "Dataset {{ len: {}, features: {} {kind}, classes: {classes} }}",
                self.len(),
                self.width
            ),
            Targets::Values { outputs, .. } => write!(
                f,
                "Dataset {{ len: {}, features: {} {kind}, target values: {outputs} }}",
                self.len(),
                self.width
            ),
            Targets::MultiHot { classes, .. } => write!(
                f,
                "Dataset {{ len: {}, features: {} {kind}, multi-hot classes: {classes} }}",
                self.len(),
                self.width
            ),
        }
    }
}

/// Checks the image invariants; the reason is worded for the IDX loader to reuse.
pub(crate) fn check(
    pixels: &[u8],
    labels: &[u8],
    features: usize,
    classes: usize,
) -> std::result::Result<(), String> {
    if features == 0 {
        return Err("images have 0 features; each image needs at least one pixel".into());
    }
    if labels.len().checked_mul(features) != Some(pixels.len()) {
        return Err(format!(
            "{} labels need {} x {features} pixels, but there are {} pixels",
            labels.len(),
            labels.len(),
            pixels.len()
        ));
    }
    check_labels(labels.iter().map(|&l| l as u32), classes)
}

fn check_labels(labels: impl Iterator<Item = u32>, classes: usize) -> std::result::Result<(), String> {
    if classes < 2 {
        return Err(format!("{classes} classes; a classifier needs at least 2"));
    }
    for (i, label) in labels.enumerate() {
        if label as usize >= classes {
            return Err(format!("label {label} at row {i} is out of range for {classes} classes"));
        }
    }
    Ok(())
}

/// Checks regression targets `[rows, outputs]` and returns `rows`; the reason names the row
/// and column of a value that is not finite.
fn check_values(values: &[f32], outputs: usize) -> std::result::Result<usize, String> {
    if outputs == 0 {
        return Err("target values have 0 outputs; each row needs at least one target value".into());
    }
    if !values.len().is_multiple_of(outputs) {
        return Err(format!(
            "{} target values are not a whole number of rows of {outputs} outputs",
            values.len()
        ));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "target value {} at row {}, column {} is not finite; clean or drop that row",
            values[i],
            i / outputs,
            i % outputs
        ));
    }
    Ok(values.len() / outputs)
}

/// Checks multi-hot targets `[rows, classes]` and returns `rows`; the reason names the row and
/// column of a value that is neither 0 nor 1.
fn check_multi_hot(values: &[f32], classes: usize) -> std::result::Result<usize, String> {
    if classes == 0 {
        return Err("multi-hot targets have 0 classes; each row needs at least one column".into());
    }
    if !values.len().is_multiple_of(classes) {
        return Err(format!(
            "{} multi-hot values are not a whole number of rows of {classes} classes",
            values.len()
        ));
    }
    if let Some(i) = values.iter().position(|&v| v != 0.0 && v != 1.0) {
        return Err(format!(
            "multi-hot target {} at row {}, column {} is neither 0 nor 1; a multi-hot row holds \
             1 for each class the row has and 0 for the others",
            values[i],
            i / classes,
            i % classes
        ));
    }
    Ok(values.len() / classes)
}

impl Dataset {
    /// Images from row-major u8 pixels `[rows, features]` and one label per row;
    /// [`Error::Data`] if an invariant fails.
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>, features: usize, classes: usize) -> Result<Self> {
        check(&pixels, &labels, features, classes).map_err(Error::Data)?;
        let labels = labels.into_iter().map(u32::from).collect();
        Self::build(Features::Pixels(pixels), features, Targets::Classes { labels, classes })
    }

    /// Rows of f32 features `[rows, width]` row-major (taken, not copied) with their targets;
    /// [`Error::Data`] naming the row and column of a NaN or infinite value, a label out of
    /// range, or a length that is not `rows * width`.
    pub fn from_values(values: Vec<f32>, width: usize, targets: Targets) -> Result<Self> {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let (row, column) = (i.checked_div(width).unwrap_or(0), i.checked_rem(width).unwrap_or(i));
            return Err(Error::Data(format!(
                "feature value {} at row {row}, column {column} is not finite; clean or drop that row",
                values[i]
            )));
        }
        Self::build(Features::Values(values), width, targets)
    }

    fn build(features: Features, width: usize, targets: Targets) -> Result<Self> {
        if width == 0 {
            return Err(Error::Data("rows have 0 features; each row needs at least one".into()));
        }
        let rows = match &targets {
            Targets::Classes { labels, classes } => {
                check_labels(labels.iter().copied(), *classes).map_err(Error::Data)?;
                labels.len()
            }
            Targets::Values { values, outputs } => check_values(values, *outputs).map_err(Error::Data)?,
            Targets::MultiHot { values, classes } => {
                check_multi_hot(values, *classes).map_err(Error::Data)?
            }
        };
        if rows == 0 {
            return Err(Error::Data("the data set has no rows".into()));
        }
        if rows.checked_mul(width) != Some(features.len()) {
            return Err(Error::Data(format!(
                "{rows} targets need {rows} x {width} = {} feature values, but there are {}",
                rows.saturating_mul(width),
                features.len()
            )));
        }
        Ok(Dataset { features, width, targets })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.targets {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { values, outputs } | Targets::MultiHot { values, classes: outputs } => {
                values.len() / outputs
            }
        }
    }

    /// Always false: a data set has at least one row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per row (784 for 28x28 images).
    pub fn features(&self) -> usize {
        self.width
    }

    /// The features, as stored.
    pub fn feature_data(&self) -> &Features {
        &self.features
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Number of classes (of a multi-hot row too); 0 when the targets are values.
    pub fn classes(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } | Targets::MultiHot { classes, .. } => *classes,
            Targets::Values { .. } => 0,
        }
    }

    /// The class index of every row; empty when the targets are values or multi-hot (see
    /// [`Dataset::values`]).
    pub fn labels(&self) -> &[u32] {
        match &self.targets {
            Targets::Classes { labels, .. } => labels,
            Targets::Values { .. } | Targets::MultiHot { .. } => &[],
        }
    }

    /// The f32 targets `[rows, outputs]` row-major and `outputs`: regression values, or
    /// multi-hot 0/1 rows (`outputs` = classes); `None` when the targets are class indices.
    pub fn values(&self) -> Option<(&[f32], usize)> {
        match &self.targets {
            Targets::Classes { .. } => None,
            Targets::Values { values, outputs } | Targets::MultiHot { values, classes: outputs } => {
                Some((values, *outputs))
            }
        }
    }

    /// The u8 pixels `[rows, features]` when the features are images; `None` for f32 values.
    pub fn pixels(&self) -> Option<&[u8]> {
        match &self.features {
            Features::Pixels(p) => Some(p),
            Features::Values(_) => None,
        }
    }

    /// The pixels of image `i`, `[features]`; `None` past the end or for f32 features.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        self.pixels()?.get(i * self.width..(i + 1) * self.width)
    }

    /// Writes row `i` as the model sees it (`p / 255` for pixels) into `out: [features]`.
    /// `i` must be below `len()` and `out` exactly `features()` long (the executors' batch
    /// gathers hold both by construction).
    pub(crate) fn row_into(&self, i: usize, out: &mut [f32]) {
        let range = i * self.width..(i + 1) * self.width;
        match &self.features {
            Features::Pixels(p) => {
                for (dst, &p) in out.iter_mut().zip(&p[range]) {
                    *dst = pixel_value(p);
                }
            }
            Features::Values(v) => out.copy_from_slice(&v[range]),
        }
    }

    /// The first `n` rows (all of them if `n >= len()`, at least one), e.g. for a quick
    /// smoke run.
    pub fn take(&self, n: usize) -> Dataset {
        let all: Vec<u32> = (0..n.clamp(1, self.len()) as u32).collect();
        self.gather(&all)
    }

    /// The rows at `indices`, in that order (repeats allowed); [`Error::Data`] naming the first
    /// index that is out of range, or for no indices at all.
    pub fn subset(&self, indices: &[u32]) -> Result<Dataset> {
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= self.len()) {
            return Err(Error::Data(format!(
                "subset index {bad} is out of range for a data set of {} rows",
                self.len()
            )));
        }
        if indices.is_empty() {
            return Err(Error::Data("a subset needs at least one row".into()));
        }
        indices.len().checked_mul(self.width).ok_or_else(|| {
            Error::Data(format!("a subset of {} rows does not fit in memory", indices.len()))
        })?;
        Ok(self.gather(indices))
    }

    /// Rows `indices`, all in range and at least one (callers check).
    fn gather(&self, indices: &[u32]) -> Dataset {
        let w = self.width;
        let features = match &self.features {
            Features::Pixels(p) => Features::Pixels(
                indices.iter().flat_map(|&i| &p[i as usize * w..(i as usize + 1) * w]).copied().collect(),
            ),
            Features::Values(v) => Features::Values(
                indices.iter().flat_map(|&i| &v[i as usize * w..(i as usize + 1) * w]).copied().collect(),
            ),
        };
        let targets = match &self.targets {
            Targets::Classes { labels, classes } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i as usize]).collect(),
                classes: *classes,
            },
            Targets::Values { values, outputs } => {
                Targets::Values { values: gather_rows(values, *outputs, indices), outputs: *outputs }
            }
            Targets::MultiHot { values, classes } => {
                Targets::MultiHot { values: gather_rows(values, *classes, indices), classes: *classes }
            }
        };
        Dataset { features, width: w, targets }
    }

    /// All features as the model sees them, `[len, features]` row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.features {
            Features::Pixels(p) => p.iter().map(|&p| pixel_value(p)).collect(),
            Features::Values(v) => v.clone(),
        }
    }
}

/// Rows `indices` of `values: [rows, width]`, in that order.
fn gather_rows(values: &[f32], width: usize, indices: &[u32]) -> Vec<f32> {
    indices.iter().flat_map(|&i| &values[i as usize * width..(i as usize + 1) * width]).copied().collect()
}
