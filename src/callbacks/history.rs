//! What a training run records per epoch, and how it is written out: CSV for a quick plot, JSON
//! to read back (a resumed run appends to its history).
//!
//! Floats that may be NaN or infinite (a diverged loss is exactly the epoch one wants on record)
//! go through `json_float` below, so that the JSON reads back as it was written.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::callbacks::metrics::EpochMetrics;
use crate::error::{Error, Result};

/// One line of the history: an epoch's metrics and its speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based.
    pub epoch: usize,
    /// The epoch's metrics by name: the training ones are means over the epoch's batches,
    /// each taken before its update (as in Keras); the `val_` ones are measured with the
    /// weights at the end of the epoch.
    pub metrics: EpochMetrics,
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
        EpochRecord { epoch, metrics: metrics.clone(), seconds, samples_per_second }
    }

    /// The metric `name` (`loss`, `val_accuracy`, ...); `None` when it was not measured.
    pub fn get(&self, name: &str) -> Option<f32> {
        self.metrics.get(name)
    }
}

/// The epochs of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per finished epoch, oldest first.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// Appends the record of the epoch that just finished.
    pub fn push(&mut self, record: EpochRecord) {
        self.epochs.push(record);
    }

    /// The latest epoch's record; `None` before the first epoch ends.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// Every metric name of the history, in the order first seen.
    pub fn metric_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in self.epochs.iter().flat_map(|r| r.metrics.iter()) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// One header line (`epoch`, every metric name, `seconds`, `samples_per_second`), then
    /// one line per epoch; a metric an epoch lacks is an empty field. Numbers use Rust's
    /// shortest round-trip form (`0.1`, `NaN`, `inf`).
    pub fn to_csv(&self) -> String {
        let names = self.metric_names();
        let mut csv = String::from("epoch");
        for name in &names {
            csv.push(',');
            csv.push_str(name);
        }
        csv.push_str(",seconds,samples_per_second\n");
        for r in &self.epochs {
            // Writing to a String cannot fail.
            let _ = write!(csv, "{}", r.epoch);
            for name in &names {
                let _ = write!(csv, ",{}", r.get(name).map(|v| v.to_string()).unwrap_or_default());
            }
            let _ = writeln!(csv, ",{},{}", r.seconds, r.samples_per_second);
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
