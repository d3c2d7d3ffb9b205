//! What a training run records per epoch, and how it is written out: CSV for a quick plot, JSON
//! to read back (a resumed run appends to its history).
//!
//! Floats that may be NaN or infinite (a diverged loss is exactly the epoch one wants on record)
//! go through `json_float` below, so that the JSON reads back as it was written.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The metrics of one finished epoch, as the trainer reports them to early stopping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Mean softmax cross-entropy per training sample over the epoch, each batch's loss taken
    /// before its update (so the weights change along the way, as in Keras).
    #[serde(with = "json_float")]
    pub loss: f32,
    /// Fraction of training samples classified right over the epoch, in `[0, 1]`, counted like
    /// `loss`.
    #[serde(with = "json_float")]
    pub accuracy: f32,
    /// Mean cross-entropy on the validation set with the weights at the end of the epoch;
    /// `None` when there is no validation set.
    #[serde(with = "json_float::option")]
    pub val_loss: Option<f32>,
    /// Validation accuracy in `[0, 1]`, like `val_loss`; `None` when there is no validation set.
    #[serde(with = "json_float::option")]
    pub val_accuracy: Option<f32>,
}

/// One line of the history: an epoch's metrics and its speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based.
    pub epoch: usize,
    /// See [`EpochMetrics::loss`].
    #[serde(with = "json_float")]
    pub loss: f32,
    /// See [`EpochMetrics::accuracy`].
    #[serde(with = "json_float")]
    pub accuracy: f32,
    /// See [`EpochMetrics::val_loss`].
    #[serde(with = "json_float::option")]
    pub val_loss: Option<f32>,
    /// See [`EpochMetrics::val_accuracy`].
    #[serde(with = "json_float::option")]
    pub val_accuracy: Option<f32>,
    /// Wall-clock time of the epoch, validation included.
    #[serde(with = "json_float")]
    pub seconds: f64,
    /// Training samples per second of wall-clock time.
    #[serde(with = "json_float")]
    pub samples_per_second: f64,
}

impl EpochRecord {
    /// A record of `metrics` at `epoch`, which took `seconds` for `samples` training samples.
    pub fn new(epoch: usize, metrics: &EpochMetrics, seconds: f64, samples: usize) -> Self {
        // A zero duration (coarse clock, empty epoch) gives 0 rather than infinity.
        let samples_per_second = if seconds > 0.0 { samples as f64 / seconds } else { 0.0 };
        EpochRecord {
            epoch,
            loss: metrics.loss,
            accuracy: metrics.accuracy,
            val_loss: metrics.val_loss,
            val_accuracy: metrics.val_accuracy,
            seconds,
            samples_per_second,
        }
    }

    /// The metrics part, as early stopping wants them.
    pub fn metrics(&self) -> EpochMetrics {
        EpochMetrics {
            loss: self.loss,
            accuracy: self.accuracy,
            val_loss: self.val_loss,
            val_accuracy: self.val_accuracy,
        }
    }
}

/// The epochs of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per finished epoch, oldest first.
    pub epochs: Vec<EpochRecord>,
}

/// The CSV header, in the order of [`EpochRecord`]'s fields.
const CSV_HEADER: &str = "epoch,loss,accuracy,val_loss,val_accuracy,seconds,samples_per_second";

impl History {
    /// Appends the record of the epoch that just finished.
    pub fn push(&mut self, record: EpochRecord) {
        self.epochs.push(record);
    }

    /// The latest epoch's record; `None` before the first epoch ends.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// One header line, then one line per epoch; a missing validation metric is an empty field.
    /// Numbers use Rust's shortest round-trip form (`0.1`, `NaN`, `inf`).
    pub fn to_csv(&self) -> String {
        let mut csv = format!("{CSV_HEADER}\n");
        for r in &self.epochs {
            let optional = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
            // Writing to a String cannot fail.
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{}",
                r.epoch,
                r.loss,
                r.accuracy,
                optional(r.val_loss),
                optional(r.val_accuracy),
                r.seconds,
                r.samples_per_second
            );
        }
        csv
    }

    /// Writes [`to_csv`](Self::to_csv) to `path`, replacing the file; I/O failures are
    /// [`Error::File`].
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), &self.to_csv())
    }

    /// Pretty-printed JSON; NaN and infinities are the strings `"NaN"`, `"inf"`, `"-inf"`.
    pub fn to_json(&self) -> String {
        // Only numbers and strings: serde_json cannot fail on them.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes [`to_json`](Self::to_json) to `path`, replacing the file; I/O failures are
    /// [`Error::File`].
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), &self.to_json())
    }

    /// Reads what [`write_json`](Self::write_json) wrote. A missing, unreadable or malformed
    /// file is an [`Error::File`] naming `path`.
    pub fn read_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not a wgtrain history JSON: {e}")))
    }
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io(path, e))
}

/// serde for floats that may be NaN or infinite. JSON has no token for them: serde_json writes
/// `null`, which then fails to read back (or reads back as `None`), and a resumed run would decide
/// differently. Finite values stay JSON numbers; the others become "NaN", "inf" or "-inf".
pub(crate) mod json_float {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// f32 and f64.
    pub(crate) trait Float: Copy + Display + FromStr + Serialize + DeserializeOwned {
        fn finite(self) -> bool;
    }
    impl Float for f32 {
        fn finite(self) -> bool {
            self.is_finite()
        }
    }
    impl Float for f64 {
        fn finite(self) -> bool {
            self.is_finite()
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr<T> {
        Number(T),
        Text(String),
    }

    fn to_repr<T: Float>(value: T) -> Repr<T> {
        match value.finite() {
            true => Repr::Number(value),
            false => Repr::Text(value.to_string()),
        }
    }

    fn from_repr<T: Float, E: serde::de::Error>(repr: Repr<T>) -> Result<T, E> {
        match repr {
            Repr::Number(value) => Ok(value),
            Repr::Text(text) => text
                .parse()
                .map_err(|_| E::custom(format!("expected a number, \"NaN\" or \"inf\", got {text:?}"))),
        }
    }

    pub(crate) fn serialize<T: Float, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        to_repr(*value).serialize(s)
    }

    pub(crate) fn deserialize<'de, T: Float, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        from_repr(Repr::deserialize(d)?)
    }

    /// The same for `Option<f32>` and `Option<f64>`: `None` is `null`.
    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<T: Float, S: Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
            value.map(to_repr).serialize(s)
        }

        pub(crate) fn deserialize<'de, T: Float, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
            Option::<Repr<T>>::deserialize(d)?.map(from_repr::<T, D::Error>).transpose()
        }
    }
}
