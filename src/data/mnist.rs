//! Loading MNIST, or anything shipped under MNIST's four file names (Fashion-MNIST), from a
//! folder. Each file may be raw or gzipped and may use the dotted names of the `mnist` crate;
//! every error names the file to look at.

use std::path::{Path, PathBuf};

use super::dataset::{self, Dataset};
use super::idx::{read_idx_images, read_idx_labels};
use crate::error::{Error, Result};

/// MNIST and Fashion-MNIST both have ten classes.
pub const MNIST_CLASSES: usize = 10;

/// The standard split of MNIST: 60,000 training and 10,000 test images.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// The training files (`train-*`), 60,000 images for MNIST.
    pub train: Dataset,
    /// The test files (`t10k-*`), 10,000 images for MNIST.
    pub test: Dataset,
}

/// The copy of MNIST shipped in this repository (`data/mnist`, gzipped IDX files).
pub fn default_mnist_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))
}

/// One IDX file of the set, by its canonical name split at the dash: `train-images` + `idx3-ubyte`.
struct Part {
    stem: &'static str,
    format: &'static str,
}

const TRAIN_IMAGES: Part = Part { stem: "train-images", format: "idx3-ubyte" };
const TRAIN_LABELS: Part = Part { stem: "train-labels", format: "idx1-ubyte" };
const TEST_IMAGES: Part = Part { stem: "t10k-images", format: "idx3-ubyte" };
const TEST_LABELS: Part = Part { stem: "t10k-labels", format: "idx1-ubyte" };

impl Part {
    fn canonical(&self) -> String {
        format!("{}-{}", self.stem, self.format)
    }

    /// Accepted names, in order of preference: raw before gzipped, dash before dot.
    fn candidates(&self) -> [String; 4] {
        let dash = self.canonical();
        let dot = format!("{}.{}", self.stem, self.format);
        [dash.clone(), format!("{dash}.gz"), dot.clone(), format!("{dot}.gz")]
    }

    fn find(&self, dir: &Path) -> Result<PathBuf> {
        let found = self.candidates().into_iter().map(|name| dir.join(name)).find(|p| p.is_file());
        found.ok_or_else(|| {
            Error::file(
                dir.join(format!("{}.gz", self.canonical())),
                format!(
                    "not found (also looked for {}); put the MNIST or Fashion-MNIST IDX files \
                     in {}",
                    self.candidates()[..].join(", "),
                    dir.display()
                ),
            )
        })
    }
}

/// Loads the training and test sets from `dir`, which holds `train-images-idx3-ubyte`,
/// `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each raw
/// or `.gz`, dashed or dotted (`train-images.idx3-ubyte`). Fashion-MNIST uses the same names.
pub fn load_mnist(dir: impl AsRef<Path>) -> Result<Mnist> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        let expected: Vec<String> = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
            .iter()
            .map(|p| format!("{}[.gz]", p.canonical()))
            .collect();
        return Err(Error::file(
            dir,
            format!(
                "folder not found; it should hold the MNIST (or Fashion-MNIST) IDX files {}. \
                 This repository ships MNIST in {}",
                expected.join(", "),
                default_mnist_dir().display()
            ),
        ));
    }
    let train = load_pair(dir, &TRAIN_IMAGES, &TRAIN_LABELS)?;
    let test = load_pair(dir, &TEST_IMAGES, &TEST_LABELS)?;
    if test.features() != train.features() {
        return Err(Error::file(
            TEST_IMAGES.find(dir)?,
            format!(
                "test images have {} pixels, training images {}: files of two data sets?",
                test.features(),
                train.features()
            ),
        ));
    }
    Ok(Mnist { train, test })
}

/// Images and labels of one set, checked against each other.
fn load_pair(dir: &Path, images: &Part, labels: &Part) -> Result<Dataset> {
    let images_path = images.find(dir)?;
    let labels_path = labels.find(dir)?;
    let img = read_idx_images(&images_path)?;
    let lbl = read_idx_labels(&labels_path)?;
    if lbl.len() != img.count {
        return Err(Error::file(
            &labels_path,
            format!(
                "holds {} labels but {} holds {} images; both files must come from the same set",
                lbl.len(),
                images_path.display(),
                img.count
            ),
        ));
    }
    let features = img.rows * img.cols;
    // Counts agree and the reader rejects empty images, so only a label range can fail here.
    dataset::check(&img.pixels, &lbl, features, MNIST_CLASSES)
        .map_err(|reason| Error::file(&labels_path, reason))?;
    Dataset::new(img.pixels, lbl, features, MNIST_CLASSES)
        .map_err(|e| Error::file(&labels_path, e.to_string()))
}
