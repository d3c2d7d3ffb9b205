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

use wgtrain::data::{default_mnist_dir, load_mnist, Dataset};
use wgtrain::gpu::{self, AdapterSelection};
use wgtrain::{Activation, Backend, Network, TrainerOptions};

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
