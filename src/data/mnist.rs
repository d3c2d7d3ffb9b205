//! Loading MNIST, or anything shipped under MNIST's four file names (Fashion-MNIST), from a
//! folder. Each file may be raw or gzipped and may use the dotted names of the `mnist` crate;
//! every error names the file to look at. The folder is found at run time (an explicit path,
//! an environment variable, or the repository's `data/mnist`), never baked in at compile time.

use std::ffi::OsString;
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

/// The environment variable naming the MNIST folder (see [`find_mnist_dir`]).
pub const MNIST_DIR_VAR: &str = "WGTRAIN_MNIST_DIR";

/// Where the repository keeps its copy of MNIST, relative to its root.
const BUNDLED: &str = "data/mnist";

/// The MNIST folder to load, found at run time, first match wins:
/// 1. `explicit` (an application's `--data DIR`), as given;
/// 2. the folder named by `$WGTRAIN_MNIST_DIR` (an error if it is not a folder);
/// 3. a `data/mnist` holding the four files in the current directory or one of its parents,
///    then in the executable's folder or one of its parents (a demo built in
///    `target/release/examples` finds the repository's copy from anywhere).
///
/// The error lists the places searched and how to point at a folder.
pub fn find_mnist_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let starts = [("the current directory", cwd), ("the program's folder", exe)];
    search(explicit, std::env::var_os(MNIST_DIR_VAR), &starts)
}

/// [`find_mnist_dir`] without an explicit folder: `$WGTRAIN_MNIST_DIR`, else the
/// repository's `data/mnist` (gzipped IDX files) found from the current directory or the
/// executable.
pub fn default_mnist_dir() -> Result<PathBuf> {
    find_mnist_dir(None)
}

/// [`find_mnist_dir`] with the environment variable's value and the search starts given
/// (each a description for the error and a folder, `None` when unknown).
fn search(
    explicit: Option<&Path>,
    var: Option<OsString>,
    starts: &[(&str, Option<PathBuf>)],
) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = var.filter(|v| !v.is_empty()).map(PathBuf::from) {
        if dir.is_dir() {
            return Ok(dir);
        }
        return Err(Error::file(
            dir,
            format!("named by {MNIST_DIR_VAR}, but there is no such folder; fix or unset the variable"),
        ));
    }
    let mut searched = Vec::new();
    for (what, start) in starts {
        let Some(start) = start else { continue };
        if let Some(found) = start.ancestors().map(|a| a.join(BUNDLED)).find(|d| holds_mnist(d)) {
            return Ok(found);
        }
        searched.push(format!("{BUNDLED} in {} and its parents ({what})", start.display()));
    }
    Err(Error::file(
        BUNDLED,
        format!(
            "no MNIST folder found; searched {}. Pass the folder explicitly (the demo: --data DIR), \
             or set {MNIST_DIR_VAR}=DIR, or run from a checkout of wgtrain, which ships MNIST in {BUNDLED}",
            if searched.is_empty() {
                "nothing (no current directory or executable path)".into()
            } else {
                searched.join(", ")
            }
        ),
    ))
}

/// Whether `dir` holds all four files of the set (under any accepted name).
fn holds_mnist(dir: &Path) -> bool {
    [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS].iter().all(|p| p.find(dir).is_ok())
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
                 The wgtrain repository ships MNIST in {BUNDLED}",
                expected.join(", "),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with the four files (empty: only their names are searched for).
    fn fake_mnist(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for part in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
            std::fs::write(dir.join(format!("{}.gz", part.canonical())), b"").unwrap();
        }
    }

    #[test]
    fn the_data_folder_search_order() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // r/repo/data/mnist holds the set; r/repo/target/release/examples is the program's
        // folder; r/elsewhere/deep is a current directory outside the repository;
        // r/repo/src is one inside it; r/env is a folder named by the variable; r/half/data/mnist
        // lacks files.
        fake_mnist(&r.join("repo/data/mnist"));
        let exe = r.join("repo/target/release/examples");
        let elsewhere = r.join("elsewhere/deep");
        let inside = r.join("repo/src");
        let half = r.join("half");
        std::fs::create_dir_all(half.join("data/mnist")).unwrap();
        std::fs::write(half.join("data/mnist/train-images-idx3-ubyte.gz"), b"").unwrap();
        for d in [&exe, &elsewhere, &inside, &r.join("env")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let bundled = r.join("repo/data/mnist");
        let explicit = r.join("given");
        let env = Some(OsString::from(r.join("env")));
        let cwd = |p: &Path| ("the current directory", Some(p.to_path_buf()));
        let prog = ("the program's folder", Some(exe.clone()));
        // (explicit, variable, search starts, expected, why)
        type Row<'a> =
            (Option<&'a Path>, Option<OsString>, Vec<(&'a str, Option<PathBuf>)>, PathBuf, &'a str);
        let rows: Vec<Row> = vec![
            (
                Some(&explicit),
                env.clone(),
                vec![cwd(&inside)],
                explicit.clone(),
                "an explicit folder wins, even a missing one (the loader reports it)",
            ),
            (None, env.clone(), vec![cwd(&inside)], r.join("env"), "then the variable"),
            (
                None,
                Some(OsString::new()),
                vec![cwd(&inside)],
                bundled.clone(),
                "an empty variable counts as unset",
            ),
            (
                None,
                None,
                vec![cwd(&inside), prog.clone()],
                bundled.clone(),
                "then data/mnist from the current directory up",
            ),
            (
                None,
                None,
                vec![cwd(&elsewhere), prog.clone()],
                bundled.clone(),
                "then from the program's folder up",
            ),
            (
                None,
                None,
                vec![cwd(&half), prog.clone()],
                bundled.clone(),
                "a data/mnist without all four files is skipped",
            ),
            (
                None,
                None,
                vec![("the current directory", None), prog.clone()],
                bundled.clone(),
                "no current directory: the program's folder",
            ),
        ];
        for (explicit, var, starts, want, why) in rows {
            let got = search(explicit, var, &starts).unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(got, want, "{why}");
        }

        let err = search(None, Some(OsString::from(r.join("nowhere"))), &[cwd(&inside)]).unwrap_err();
        assert!(err.to_string().contains(MNIST_DIR_VAR), "a bad variable is named: {err}");
        let err = search(None, None, &[cwd(&elsewhere), ("the program's folder", Some(elsewhere.clone()))])
            .unwrap_err()
            .to_string();
        for needle in ["data/mnist in", "current directory", "program's folder", "--data", MNIST_DIR_VAR] {
            assert!(err.contains(needle), "the error should mention `{needle}`: {err}");
        }
    }
}
