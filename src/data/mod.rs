//! Data for training: a [`Dataset`] of u8 images or f32 rows, our IDX reader (raw or gzipped, every bad input an
//! error), MNIST loading from a folder, and seeded validation splits and epoch shuffles.
//!
//! ```no_run
//! use wgtrain::data::{load_mnist, default_mnist_dir, validation_split};
//! let mnist = load_mnist(default_mnist_dir()?)?;
//! let split = validation_split(mnist.train.len(), 0.1, 42)?;
//! let val = mnist.train.subset(&split.val)?;
//! # Ok::<(), wgtrain::Error>(())
//! ```

mod dataset;
mod idx;
mod mnist;
mod split;
mod table;

pub use dataset::{Dataset, Features, Targets};
pub use idx::{
    parse_idx_images, parse_idx_labels, read_idx_images, read_idx_labels, IdxImages, MAX_IDX_BYTES,
};
pub use mnist::{default_mnist_dir, find_mnist_dir, load_mnist, Mnist, MNIST_CLASSES, MNIST_DIR_VAR};
pub use split::{shuffled, validation_split, Split};
pub use table::{
    read_csv, read_npy, read_npz, Column, CsvOptions, LoadReport, Schema, Standardizer, Table, Target,
    TargetKind, MAX_INFERRED_CLASSES, MAX_TABLE_BYTES, MISSING_VALUES,
};
