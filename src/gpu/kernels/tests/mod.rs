//! The kernels' tests: every kernel against the CPU reference (or an f64 one) on awkward
//! shapes, with tolerances derived in `common.rs`, and every shader validated by naga. Unit
//! tests, since the kernels are internal to the crate. They run on the adapter of
//! [`test_adapter`]: the first Vulkan one (lavapipe on CI), else GL (llvmpipe where no Vulkan
//! driver is installed); a test fails, never skips, when there is none.
#![allow(dead_code)]

mod activation;
mod common;
mod dense_backward;
mod dropout;
mod gather_errors;
mod matmul;
mod matmul_epilogue;
mod matmul_sums;
mod reduce_optim;
mod regression_loss;
mod shaders;
mod sigmoid_xent;
mod softmax_head;
mod softmax_xent;
mod texture;
mod tuning;

use std::sync::OnceLock;

use crate::gpu::kernels::Kernels;
use crate::gpu::{self, AdapterReport, AdapterSelection, Gpu};

pub struct Fixture {
    pub gpu: Gpu,
    pub kernels: Kernels,
}

/// The adapter GPU tests run on: the first Vulkan adapter (lavapipe on CI), else the first GL
/// adapter (llvmpipe where no Vulkan driver is installed), else the first of any backend.
/// Panics, failing the test, when there is none.
pub fn test_adapter() -> &'static AdapterReport {
    static A: OnceLock<AdapterReport> = OnceLock::new();
    A.get_or_init(|| {
        let all = gpu::list_adapters();
        ["vulkan", "gl"]
            .iter()
            .find_map(|b| all.iter().find(|r| r.backend == *b))
            .or_else(|| all.first())
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "this test needs a GPU adapter and wgpu found none; install Mesa's software drivers \
                     (`apt-get install mesa-vulkan-drivers libvulkan1 libegl1 libgl1-mesa-dri`, or run .ci/run)"
                )
            })
    })
}

/// `n` logical devices on [`test_adapter`].
pub fn open_gpus(n: usize) -> Vec<Gpu> {
    let adapter = test_adapter();
    gpu::open(&AdapterSelection::Indices(vec![adapter.index]), n)
        .unwrap_or_else(|e| panic!("opening {n} device(s) on {}: {e}", adapter.label()))
}

/// One device on [`test_adapter`] with its kernels, shared by the tests of a binary.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let gpu = open_gpus(1).remove(0);
        let kernels = Kernels::new(&gpu).unwrap_or_else(|e| panic!("building kernels failed: {e}"));
        Fixture { gpu, kernels }
    })
}

/// Deterministic values in [-1, 1) (a tiny LCG, so tests need no RNG crate state).
pub fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Uploads `data` into a storage buffer usable as any kernel operand.
pub fn upload(gpu: &Gpu, data: &[f32]) -> wgpu::Buffer {
    gpu.upload("test", data, wgpu::BufferUsages::COPY_SRC).expect("upload")
}

pub fn zeros(gpu: &Gpu, len: usize) -> wgpu::Buffer {
    upload(gpu, &vec![0.0; len])
}

pub fn read(gpu: &Gpu, buf: &wgpu::Buffer, len: usize) -> Vec<f32> {
    gpu.read::<f32>(buf, 0, len).expect("readback")
}
