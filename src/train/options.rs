//! What a training run is asked to do: model, optimizer and its learning-rate control, batch
//! size, epochs, seed, validation, early stopping, and where to run, with the rule that picks the executor by default.

use crate::callbacks::early_stopping::EarlyStopping;
use crate::callbacks::reduce_lr::ReduceLrOnPlateau;
use crate::error::{Error, Result};
use crate::gpu::kernels::TuningCache;
use crate::gpu::{self, AdapterReport, AdapterSelection, Gpu};
use crate::spec::{Activation, Init, Loss, Network};
use crate::spec::{LrSchedule, Optimizer};

/// Where the math runs.
#[derive(Debug, Clone, Default)]
pub enum Backend {
    /// The fastest executor this machine has (the default): its best hardware GPU, else the
    /// CPU executor. Software adapters (device type `cpu`: Mesa's lavapipe and llvmpipe) are
    /// never picked: on them an MNIST epoch took 1.75-2.0 s against 0.21 s for the CPU
    /// executor on the same two cores. [`Backend::resolve`] says what it picks and why.
    #[default]
    Auto,
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
    /// The CPU reference backend (rayon); no driver needed.
    Cpu,
    /// One process of an MPI job (feature `mpi`; launch with `mpirun`): every process runs
    /// `local` (`Cpu`, `Gpu` or `Devices`), each global batch is split over the replicas of
    /// every process, and their gradients are summed across the processes, the same bits on
    /// every rank. Only rank 0 writes checkpoints. `replica_weights`, if set, weigh this
    /// process's replicas; every rank learns every rank's.
    #[cfg(feature = "mpi")]
    Mpi {
        /// The job's processes.
        group: crate::parallel::MpiGroup,
        /// What this process trains on.
        local: Box<Backend>,
    },
}

/// What a [`Backend`] resolved to, and why (for the application to tell its user).
#[derive(Debug, Clone)]
pub struct BackendChoice {
    /// The backend that runs: never [`Backend::Auto`].
    pub backend: Backend,
    /// Why, in words: e.g. `only software adapters found: llvmpipe (Vulkan), llvmpipe (GL);
    /// the CPU executor is faster than them`.
    pub reason: String,
}

impl BackendChoice {
    /// `cpu`, `gpu` or `devices`: the kind of executor, for a one-line report.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Cpu => "cpu",
            Backend::Gpu { .. } | Backend::Auto => "gpu",
            Backend::Devices(_) => "devices",
            #[cfg(feature = "mpi")]
            Backend::Mpi { .. } => "mpi",
        }
    }
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.kind(), self.reason)
    }
}

impl Backend {
    /// This backend with [`Backend::Auto`] resolved against the adapters of this machine
    /// (which it lists: about 0.1-0.2 s); any other backend is returned as it is.
    pub fn resolve(&self) -> BackendChoice {
        match self {
            Backend::Auto => self.resolve_with(&gpu::list_adapters()),
            _ => self.resolve_with(&[]),
        }
    }

    /// [`Backend::resolve`] against a given list of adapters (what `resolve` does once it
    /// has listed them). [`Backend::Auto`] picks the best hardware adapter (discrete before
    /// integrated before virtual, Vulkan/Metal/DX12 before GL), else the CPU executor.
    pub fn resolve_with(&self, adapters: &[AdapterReport]) -> BackendChoice {
        if !matches!(self, Backend::Auto) {
            return BackendChoice { backend: self.clone(), reason: "chosen by the caller".into() };
        }
        let hardware: Vec<&AdapterReport> = adapters.iter().filter(|r| r.device_type != "cpu").collect();
        let best = gpu::select(adapters, &AdapterSelection::BestPerDevice)
            .ok()
            .and_then(|picked| picked.first().copied())
            .and_then(|i| adapters.iter().find(|r| r.index == i))
            .filter(|r| r.device_type != "cpu");
        if let Some(best) = best {
            let others = hardware.len() - 1;
            let mut reason = format!("hardware adapter found: {}", describe(best));
            if others > 0 {
                reason.push_str(&format!(
                    "; {others} other hardware adapter(s) not used (select them for data parallel)"
                ));
            }
            let selection = AdapterSelection::Indices(vec![best.index]);
            return BackendChoice { backend: Backend::Gpu { selection, replicas_per_adapter: 1 }, reason };
        }
        let reason = if adapters.is_empty() {
            "no GPU adapter found".to_string()
        } else {
            let names: Vec<String> = adapters.iter().map(describe).collect();
            format!(
                "only software adapters found: {}; the CPU executor is faster than them",
                names.join(", ")
            )
        };
        BackendChoice { backend: Backend::Cpu, reason }
    }
}

/// `llvmpipe (Vulkan)`, `NVIDIA H100 80GB HBM3 (Vulkan, discrete)`: the name up to its first
/// parenthesis, the backend, and the device type for hardware.
fn describe(r: &AdapterReport) -> String {
    let name = r.name.split(" (").next().unwrap_or(&r.name).trim();
    let backend = match r.backend.as_str() {
        "vulkan" => "Vulkan",
        "gl" => "GL",
        "metal" => "Metal",
        "dx12" => "DX12",
        other => other,
    };
    if r.device_type == "cpu" {
        format!("{name} ({backend})")
    } else {
        format!("{name} ({backend}, {})", r.device_type)
    }
}

/// Everything a [`crate::Trainer`] needs besides the data. `Default` is the classic MNIST
/// setup: 784-64 ReLU-10, He init, Adam 1e-3, batch 128, 20 epochs, 10% validation split,
/// no early stopping.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// The network: its inputs and its list of layers.
    pub spec: Network,
    /// What the last layer's outputs are trained against; it decides the metrics reported.
    pub loss: Loss,
    /// The update rule; one step per batch. Its `lr` is the base rate that `lr_schedule`
    /// shapes and `reduce_lr_on_plateau` reduces.
    pub optimizer: Optimizer,
    /// How the learning rate changes from step to step ([`LrSchedule::Constant`] by
    /// default).
    pub lr_schedule: LrSchedule,
    /// Reduce the learning rate when a metric stops improving (Keras's
    /// `ReduceLROnPlateau`); `None` never does. Only with a constant `lr_schedule`: Keras
    /// refuses to set the rate of a schedule, and so do we rather than guess what a
    /// reduction of a schedule should mean.
    pub reduce_lr_on_plateau: Option<ReduceLrOnPlateau>,
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
            spec: Network::default(),
            loss: Loss::default(),
            optimizer: Optimizer::default(),
            lr_schedule: LrSchedule::Constant,
            reduce_lr_on_plateau: None,
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
        self.loss.validate()?;
        let reads = match self.loss {
            Loss::SoftmaxCrossEntropy | Loss::SigmoidCrossEntropy => "reads logits",
            _ => "reads unbounded predictions",
        };
        if self.spec.activations().last() != Some(&Activation::Identity) {
            return Err(Error::Config(format!(
                "{} {reads}: the last layer's activation must be Activation::Identity",
                self.loss.describe()
            )));
        }
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
        self.lr_schedule.validate()?;
        if let Some(reduce) = &self.reduce_lr_on_plateau {
            reduce.validate()?;
            if !self.lr_schedule.is_constant() {
                return Err(Error::Config(format!(
                    "reduce_lr_on_plateau cannot reduce a learning rate that lr_schedule ({:?}) \
                     sets every step (Keras refuses it too); use one or the other",
                    self.lr_schedule
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(index: usize, name: &str, backend: &str, device_type: &str) -> AdapterReport {
        AdapterReport {
            index,
            name: name.into(),
            backend: backend.into(),
            device_type: device_type.into(),
            driver: String::new(),
            max_storage_buffer_binding_size: 1 << 27,
            max_buffer_size: 1 << 28,
            max_compute_invocations_per_workgroup: 256,
            max_compute_workgroup_storage_size: 16384,
            timestamp_queries: false,
        }
    }

    /// What `Auto` picks: `Some(i)` for one GPU replica on adapter i, `None` for the CPU.
    fn picked(choice: &BackendChoice) -> Option<Vec<usize>> {
        match &choice.backend {
            Backend::Cpu => None,
            Backend::Gpu { selection: AdapterSelection::Indices(ix), replicas_per_adapter: 1 } => {
                Some(ix.clone())
            }
            other => panic!("Auto resolved to {other:?}"),
        }
    }

    #[test]
    fn auto_picks_hardware_else_the_cpu() {
        let lavapipe = |i| adapter(i, "llvmpipe (LLVM 15.0.6, 256 bits)", "vulkan", "cpu");
        let llvmpipe_gl = |i| adapter(i, "llvmpipe (LLVM 15.0.6, 256 bits)", "gl", "cpu");
        let h100 = |i| adapter(i, "NVIDIA H100 80GB HBM3", "vulkan", "discrete");
        let h100_gl = |i| adapter(i, "NVIDIA H100 80GB HBM3/PCIe/SSE2", "gl", "discrete");
        let intel = |i| adapter(i, "Intel(R) UHD Graphics 630", "vulkan", "integrated");
        // (adapters, expected pick, words the reason must hold, why)
        type Row = (Vec<AdapterReport>, Option<Vec<usize>>, &'static str, &'static str);
        let rows: Vec<Row> = vec![
            (vec![], None, "no GPU adapter found", "nothing at all: the CPU"),
            (
                vec![lavapipe(0), llvmpipe_gl(1)],
                None,
                "only software adapters found: llvmpipe (Vulkan), llvmpipe (GL); the CPU executor is faster than them",
                "software adapters only: the CPU is ~8x faster",
            ),
            (vec![llvmpipe_gl(0)], None, "only software adapters found: llvmpipe (GL)", "a GL-only machine"),
            (
                vec![lavapipe(0), h100_gl(1), h100(2)],
                Some(vec![2]),
                "hardware adapter found: NVIDIA H100 80GB HBM3 (Vulkan, discrete)",
                "hardware beats software; Vulkan beats GL for the same GPU",
            ),
            (vec![h100_gl(0), lavapipe(1)], Some(vec![0]), "(GL, discrete)", "a GPU with only a GL driver"),
            (vec![intel(0), h100(1)], Some(vec![1]), "NVIDIA", "discrete before integrated"),
            (vec![intel(0), lavapipe(1)], Some(vec![0]), "Intel(R) UHD Graphics 630 (Vulkan, integrated)", "an iGPU beats llvmpipe"),
            (
                vec![h100(0), adapter(1, "NVIDIA A100", "vulkan", "discrete")],
                Some(vec![0]),
                "1 other hardware adapter(s) not used",
                "two GPUs: one, and the reason says so",
            ),
        ];
        for (adapters, want, words, why) in rows {
            let choice = Backend::Auto.resolve_with(&adapters);
            assert_eq!(picked(&choice), want, "{why}");
            assert!(choice.reason.contains(words), "{why}: reason `{}` lacks `{words}`", choice.reason);
        }
    }

    #[test]
    fn explicit_backends_are_kept_and_auto_is_the_default() {
        let software = [adapter(0, "llvmpipe (LLVM 15.0.6, 256 bits)", "vulkan", "cpu")];
        let gpu =
            Backend::Gpu { selection: AdapterSelection::Backend("vulkan".into()), replicas_per_adapter: 2 };
        let kept = gpu.resolve_with(&software);
        assert!(
            matches!(&kept.backend, Backend::Gpu { selection: AdapterSelection::Backend(b), replicas_per_adapter: 2 } if b == "vulkan"),
            "an explicit GPU choice is kept even where Auto would take the CPU: {kept:?}"
        );
        assert!(matches!(Backend::Cpu.resolve_with(&[]).backend, Backend::Cpu));
        assert!(matches!(Backend::default(), Backend::Auto));
        assert!(matches!(TrainerOptions::default().backend, Backend::Auto));
        assert_eq!(
            AdapterSelection::default(),
            AdapterSelection::BestPerDevice,
            "agrees with Auto: best per device"
        );
        assert_eq!(
            Backend::Auto.resolve_with(&software).to_string(),
            "cpu (only software adapters found: llvmpipe (Vulkan); the CPU executor is faster than them)"
        );
    }
}
