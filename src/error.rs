//! The one error type of the crate. Every fallible public function returns [`Result`];
//! each variant is something a caller can match on, and each message says what to do next.

use std::path::PathBuf;

/// Shorthand for `std::result::Result<T, wgtrain::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in wgtrain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No adapter to run on: the [`crate::AdapterSelection`] matched none of the adapters wgpu
    /// lists (or asked for an index past the end), or [`crate::Backend::Devices`] was empty.
    /// Install a driver, pick another selection, or use [`crate::Backend::Cpu`].
    #[error(
        "no GPU adapter found{detail}. On Linux without a GPU install Mesa's software Vulkan driver \
         (`apt-get install mesa-vulkan-drivers libvulkan1`), or use the CPU backend"
    )]
    NoAdapter {
        /// Extra context, e.g. which selection matched nothing (starts with ": " when set).
        detail: String,
    },

    /// The adapter refused to create a device ([`crate::Gpu::open`] asks for every limit the
    /// adapter reports and, where supported, timestamp queries).
    #[error("could not create a device on adapter `{adapter}`: {reason}")]
    DeviceRequest {
        /// The adapter's [`crate::AdapterReport::label`].
        adapter: String,
        /// wgpu's message.
        reason: String,
    },

    /// The device was lost (driver reset, GPU removed, process out of resources), a wait got
    /// no answer within the time limit (a hung device), or a readback never completed. The
    /// device is unusable: save what is on the host and build a new trainer.
    #[error("device `{adapter}` was lost: {reason}. Save what you have and recreate the trainer")]
    DeviceLost {
        /// The adapter's label; prefixed `replica N on` in data-parallel training.
        adapter: String,
        /// wgpu's lost reason and message, or what timed out.
        reason: String,
    },

    /// wgpu reported a validation or internal error: caught by an error scope around resource
    /// creation, by the uncaptured-error handler while submitted work ran, or while mapping a
    /// readback buffer. Usually a bug in wgtrain or in the driver rather than in the caller's
    /// input.
    #[error("GPU error on `{adapter}` while {context}: {message}")]
    Gpu {
        /// The adapter's label (`replica N on ...` in data-parallel training, `host` when
        /// reading mapped gradients on the host failed).
        adapter: String,
        /// What wgtrain was doing, e.g. "creating buffer `dataset pixels`" or "running
        /// submitted work".
        context: String,
        /// wgpu's message.
        message: String,
    },

    /// A buffer would exceed the device's `max_buffer_size` or
    /// `max_storage_buffer_binding_size` (checked before allocating), or wgpu's out-of-memory
    /// error scope caught a failed allocation.
    #[error("out of device memory or over a limit on `{adapter}`: {what}. Use a smaller batch or model")]
    OutOfMemory {
        /// The adapter's label; prefixed `replica N on` in data-parallel training.
        adapter: String,
        /// Which buffer, how many bytes it needed and what the device allows.
        what: String,
    },

    /// Shapes that cannot work together, or zero-sized dimensions: an invalid [`crate::Network`],
    /// a dataset whose features or classes do not fit the model, a parameter, gradient or
    /// checkpoint tensor of the wrong length, a kernel call outside its buffers or over the
    /// device's workgroup limits.
    #[error("bad shape: {0}")]
    Shape(String),

    /// A configuration value out of its range (learning rate of zero, split of 1.5, ...), an
    /// adapter selection that does not parse, a checkpoint trained with another spec or
    /// optimizer, or a call the current backend does not support (`train_step` on several
    /// devices).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Data that cannot be trained on (NaN pixels, label out of range, empty set, ...), NaN or
    /// infinite parameters or inputs, and IDX bytes that do not parse (the same problem in a
    /// file read from disk is an [`Error::File`] naming it).
    #[error("bad data: {0}")]
    Data(String),

    /// A file that is missing, unreadable, truncated or not in the expected format.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it, with a hint where one helps ("file not found (check the path)").
        reason: String,
    },

    /// Training was cancelled through a [`crate::CancelToken`]: `fit` checks the token at its
    /// progress points during an epoch and returns this; the trainer keeps the weights of the
    /// steps already run.
    #[error("training was cancelled")]
    Cancelled,

    /// Training across processes (feature `mpi`) failed: a process could not open its devices
    /// at start, a peer sent nothing within the group's time limit (it died or hangs), the
    /// processes disagreed on the training state (not resumed from the same checkpoint), or
    /// MPI refused a call. The group is unusable afterwards: end every process (`mpirun` does
    /// once one exits non-zero) and resume from rank 0's last checkpoint.
    #[error("rank {rank}: {reason}")]
    Distributed {
        /// The rank of the process reporting the error.
        rank: usize,
        /// The rank at fault, where one is known (the one that failed to start, sent nothing
        /// in time, or disagreed with rank 0).
        peer: Option<usize>,
        /// What happened and what to do.
        reason: String,
    },
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
