//! What a training run is asked to do: model, optimizer, batch size, epochs, seed, validation,
//! early stopping, and where to run.

use crate::callbacks::early_stopping::EarlyStopping;
use crate::error::{Error, Result};
use crate::gpu::kernels::TuningCache;
use crate::gpu::{AdapterSelection, Gpu};
use crate::spec::Optimizer;
use crate::spec::{Init, MlpSpec};

/// Where the math runs.
#[derive(Debug, Clone)]
pub enum Backend {
    /// GPU adapters chosen by a policy, `replicas_per_adapter` logical devices on each.
    /// More than one device in all trains data parallel.
    Gpu {
        /// Which adapters to open.
        selection: AdapterSelection,
        /// Devices opened on each selected adapter (at least 1); more than one lets data
        /// parallel run, and be tested, on a single adapter.
        replicas_per_adapter: usize,
    },
    /// Devices the application created itself (see [`Gpu::from_device`]).
    Devices(Vec<Gpu>),
    /// The CPU reference backend (rayon); the fallback when no adapter exists.
    Cpu,
}

impl Default for Backend {
    /// The best adapter of the machine, one replica.
    fn default() -> Self {
        Backend::Gpu { selection: AdapterSelection::BestPerDevice, replicas_per_adapter: 1 }
    }
}

/// Everything a [`crate::Trainer`] needs besides the data. `Default` is the classic MNIST
/// setup: 784-64 ReLU-10, He init, Adam 1e-3, batch 128, 20 epochs, 10% validation split,
/// no early stopping.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// The model's layer sizes and activations.
    pub spec: MlpSpec,
    /// The update rule; one step per batch.
    pub optimizer: Optimizer,
    /// How [`crate::Trainer::new`] draws the initial weights (biases start at zero).
    pub init: Init,
    /// Training rows per optimizer step (at least 1); the last batch of an epoch holds the
    /// rest. In data parallel this is the global batch, split across the devices.
    pub batch_size: usize,
    /// Epochs to train in all, counted across `fit` calls and resumes: training stops when
    /// the trainer has completed this many, or earlier on early stopping.
    pub epochs: usize,
    /// Seeds initialisation, the validation split and every epoch's shuffle.
    pub seed: u64,
    /// Fraction of the training set held out for validation when `fit` gets no explicit
    /// validation data (0 for none).
    pub validation_split: f32,
    /// When to stop before `epochs`; `None` trains every epoch.
    pub early_stopping: Option<EarlyStopping>,
    /// Rows per evaluation launch on a GPU (at least 1); with `batch_size` it sizes the
    /// device workspace. The CPU backend ignores it.
    pub eval_batch: usize,
    /// Where the math runs.
    pub backend: Backend,
    /// Where the GPU devices keep their matmul tuning decisions between runs, so that only a
    /// machine's first run times the kernel variants: by default the user's cache folder
    /// (`$XDG_CACHE_HOME/wgtrain` or `~/.cache/wgtrain`), one small file per adapter, driver
    /// version and wgtrain version. [`TuningCache::Disabled`] reads and writes nothing.
    /// Applies to every device of the trainer, also those of [`Backend::Devices`]. A
    /// corrupt or unwritable cache is ignored; a decision never changes results, only speed.
    pub tuning_cache: TuningCache,
    /// Write the full training state here after every epoch (atomically), so that
    /// [`crate::Trainer::resume`] can continue after a crash.
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Data parallel: relative speed of each replica, in device order; each global batch
    /// is split in proportion (largest remainder). `None` splits equally.
    pub replica_weights: Option<Vec<f64>>,
}

impl Default for TrainerOptions {
    fn default() -> Self {
        TrainerOptions {
            spec: MlpSpec::default(),
            optimizer: Optimizer::default(),
            init: Init::He,
            batch_size: 128,
            epochs: 20,
            seed: 0,
            validation_split: 0.1,
            early_stopping: None,
            eval_batch: 1000,
            backend: Backend::default(),
            tuning_cache: TuningCache::default(),
            checkpoint_dir: None,
            replica_weights: None,
        }
    }
}

impl TrainerOptions {
    /// Rejects options that cannot train, before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        self.optimizer.validate()?;
        if self.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        if self.eval_batch == 0 {
            return Err(Error::Config("evaluation batch must be at least 1".into()));
        }
        if !(self.validation_split.is_finite() && (0.0..1.0).contains(&self.validation_split)) {
            return Err(Error::Config(format!(
                "validation split must be in [0, 1), got {}",
                self.validation_split
            )));
        }
        if let Backend::Gpu { replicas_per_adapter: 0, .. } = self.backend {
            return Err(Error::Config("replicas per adapter must be at least 1".into()));
        }
        if let Some(es) = &self.early_stopping {
            es.validate()?;
        }
        Ok(())
    }
}
