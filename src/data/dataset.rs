//! [`Dataset`]: labelled images kept as u8 pixels, a quarter of the memory of f32, converted to
//! `pixel / 255` only where the model needs floats.

use crate::error::{Error, Result};

/// Images as u8 pixels, row-major `[len, features]`; the model sees `pixel / 255`.
///
/// Invariants (checked by [`Dataset::new`]): `features > 0`, `classes >= 2`,
/// `pixels.len() == labels.len() * features` and every label `< classes`. The fields are public
/// for reading; a caller who edits them is responsible for keeping these true.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// `[len, features]` row-major.
    pub pixels: Vec<u8>,
    /// `[len]`, each in `0..classes`.
    pub labels: Vec<u8>,
    /// Pixels per image (784 for 28x28).
    pub features: usize,
    /// Number of classes the labels index.
    pub classes: usize,
}

impl std::fmt::Debug for Dataset {
    // The pixels would be millions of numbers: print the shape instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dataset {{ len: {}, features: {}, classes: {} }}", self.len(), self.features, self.classes)
    }
}

/// Checks the [`Dataset`] invariants; the reason is worded for the loader to reuse.
pub(crate) fn check(
    pixels: &[u8],
    labels: &[u8],
    features: usize,
    classes: usize,
) -> std::result::Result<(), String> {
    if features == 0 {
        return Err("images have 0 features; each image needs at least one pixel".into());
    }
    if classes < 2 {
        return Err(format!("{classes} classes; a classifier needs at least 2"));
    }
    if labels.len().checked_mul(features) != Some(pixels.len()) {
        return Err(format!(
            "{} labels need {} x {features} pixels, but there are {} pixels",
            labels.len(),
            labels.len(),
            pixels.len()
        ));
    }
    if let Some(i) = labels.iter().position(|&l| l as usize >= classes) {
        return Err(format!("label {} at index {i} is out of range for {classes} classes", labels[i]));
    }
    Ok(())
}

impl Dataset {
    /// A data set from row-major pixels and labels; [`Error::Data`] if an invariant fails.
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>, features: usize, classes: usize) -> Result<Self> {
        check(&pixels, &labels, features, classes).map_err(Error::Data)?;
        Ok(Dataset { pixels, labels, features, classes })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`, `[features]`.
    ///
    /// # Panics
    /// If `i >= len()`, like slice indexing: an index is the caller's, not the data's.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.features..(i + 1) * self.features]
    }

    /// The first `n` images (all of them if `n >= len()`), e.g. for a quick smoke run.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            pixels: self.pixels[..n * self.features].to_vec(),
            labels: self.labels[..n].to_vec(),
            features: self.features,
            classes: self.classes,
        }
    }

    /// The images at `indices`, in that order (repeats allowed); [`Error::Data`] naming the
    /// first index that is out of range.
    pub fn subset(&self, indices: &[u32]) -> Result<Dataset> {
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= self.len()) {
            return Err(Error::Data(format!(
                "subset index {bad} is out of range for a data set of {} images",
                self.len()
            )));
        }
        let size = indices.len().checked_mul(self.features).ok_or_else(|| {
            Error::Data(format!("a subset of {} images does not fit in memory", indices.len()))
        })?;
        let mut pixels = Vec::with_capacity(size);
        for &i in indices {
            pixels.extend_from_slice(self.image(i as usize));
        }
        let labels = indices.iter().map(|&i| self.labels[i as usize]).collect();
        Ok(Dataset { pixels, labels, features: self.features, classes: self.classes })
    }

    /// All pixels as `p as f32 / 255.0`, `[len, features]` row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| p as f32 / 255.0).collect()
    }
}
