//! The one error type of the crate. Every fallible public function returns [`Result`];
//! each variant is something a caller can match on, and each message says what to do next.

use std::path::PathBuf;

/// Shorthand for `std::result::Result<T, wgtrain::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in wgtrain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// wgpu found no adapter matching the selection.
    #[error(
        "no GPU adapter found{detail}. On Linux without a GPU install Mesa's software Vulkan driver \
         (`apt-get install mesa-vulkan-drivers libvulkan1`), or use the CPU backend"
    )]
    NoAdapter {
        /// Extra context, e.g. which selection matched nothing (starts with ": " when set).
        detail: String,
    },

    /// The adapter refused to create a device.
    #[error("could not create a device on adapter `{adapter}`: {reason}")]
    DeviceRequest { adapter: String, reason: String },

    /// The device was lost (driver reset, GPU removed, process out of resources).
    #[error("device `{adapter}` was lost: {reason}. Save what you have and recreate the trainer")]
    DeviceLost { adapter: String, reason: String },

    /// wgpu reported a validation or internal error.
    #[error("GPU error on `{adapter}` while {context}: {message}")]
    Gpu { adapter: String, context: String, message: String },

    /// An allocation failed or a buffer would exceed the device's limits.
    #[error(
        "out of device memory or over a limit on `{adapter}`: {what}. Use a smaller batch or model"
    )]
    OutOfMemory { adapter: String, what: String },

    /// Shapes that cannot work together, or zero-sized dimensions.
    #[error("bad shape: {0}")]
    Shape(String),

    /// A configuration value out of its range (learning rate of zero, split of 1.5, ...).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Data that cannot be trained on (NaN pixels, label out of range, empty set, ...).
    #[error("bad data: {0}")]
    Data(String),

    /// A file that is missing, unreadable, truncated or not in the expected format.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },

    /// Training was cancelled through a [`crate::CancelToken`].
    #[error("training was cancelled")]
    Cancelled,
}

impl Error {
    /// A [`Error::File`] from a path and an I/O error, with a hint for the common cases.
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        let reason = match err.kind() {
            std::io::ErrorKind::NotFound => "file not found (check the path)".to_string(),
            std::io::ErrorKind::UnexpectedEof => "file is truncated".to_string(),
            _ => err.to_string(),
        };
        Error::File { path: path.into(), reason }
    }

    /// A [`Error::File`] with a free-form reason.
    pub fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::File { path: path.into(), reason: reason.into() }
    }
}
