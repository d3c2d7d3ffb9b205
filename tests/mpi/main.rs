//! Training across processes over MPI (feature `mpi`), under `mpirun`:
//!
//!     cargo test --release --features mpi --test mpi
//!
//! This binary is its own launcher. Started by cargo (no MPI environment) it is the
//! orchestrator: it runs every scenario as `mpirun -np N <this binary> <scenario> <dir>`,
//! then checks what the ranks wrote into `dir` and what `mpirun` printed, against references
//! it trains itself in one process. Started by `mpirun`, it is one rank of a scenario. (A
//! harness-less test: the ranks must make the same MPI calls in the same order, which
//! libtest's threads would not.)
//!
//! Needs Open MPI's `mpirun` on the PATH (`.ci/run` installs it) and Mesa's lavapipe.

mod orchestrator;
mod rank;

use wgtrain::data::{default_mnist_dir, load_mnist, Dataset, Targets};
use wgtrain::gpu::{self, AdapterSelection};
use wgtrain::{Activation, Backend, Loss, Network, TrainerOptions};

fn main() {
    let rank_env = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"];
    if rank_env.iter().any(|v| std::env::var_os(v).is_some()) {
        std::process::exit(rank::main());
    }
    orchestrator::main();
}

/// The options every scenario shares: the MNIST model, seeded, no early stopping unless a
/// scenario adds it.
fn options(backend: Backend, batch: usize, epochs: usize, seed: u64) -> TrainerOptions {
    TrainerOptions { spec: Network::default(), ..options_with_dropout(backend, batch, epochs, seed) }
}

/// [`options`] with the MNIST model's hidden layer followed by dropout 0.3.
fn options_with_dropout(backend: Backend, batch: usize, epochs: usize, seed: u64) -> TrainerOptions {
    TrainerOptions {
        spec: Network::new(784).dense(64, Activation::Relu).dropout(0.3).dense(10, Activation::Identity),
        batch_size: batch,
        epochs,
        seed,
        validation_split: 0.1,
        backend,
        ..TrainerOptions::default()
    }
}

/// A regression of 3 outputs from 13 features: every executor and rank builds the same
/// rows from the seed.
fn regression_data(rows: usize) -> Dataset {
    let (inputs, outputs) = (13, 3);
    let mut s = 7u64;
    let x: Vec<f32> = (0..rows * inputs)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let y = (0..rows * outputs)
        .map(|i| {
            let (r, o) = (i / outputs, i % outputs);
            x[r * inputs + o] * 2.0 - x[r * inputs + o + 5] + 0.5 * x[r * inputs + 12] * x[r * inputs + o]
        })
        .collect();
    Dataset::from_values(x, inputs, Targets::Values { values: y, outputs }).expect("regression rows")
}

/// [`options`] for [`regression_data`]: a 13-24-3 tanh network with dropout after the
/// hidden layer (so a rank's share must draw the masks of its rows' places in the global
/// batch under this loss too), under the mean squared error.
fn regression_options(backend: Backend, batch: usize, epochs: usize) -> TrainerOptions {
    TrainerOptions {
        spec: Network::new(13).dense(24, Activation::Tanh).dropout(0.2).dense(3, Activation::Identity),
        loss: Loss::MeanSquaredError,
        ..options(backend, batch, epochs, 11)
    }
}

fn mnist_train(rows: usize) -> Dataset {
    load_mnist(default_mnist_dir().expect("the bundled MNIST folder"))
        .expect("the bundled MNIST")
        .train
        .take(rows)
}

fn lavapipe(replicas: usize) -> Backend {
    Backend::Devices(gpu::open(&AdapterSelection::Backend("vulkan".into()), replicas).expect("lavapipe"))
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
