//! Shared test setup: one lavapipe-or-better device and its kernels per test binary.
//!
//! A test that needs an adapter fails when none is found (never skips): CI installs Mesa's
//! software Vulkan driver precisely so that these tests run.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgtrain::gpu::kernels::Kernels;
use wgtrain::gpu::{self, AdapterSelection, Gpu};

pub struct Fixture {
    pub gpu: Gpu,
    pub kernels: Kernels,
}

/// The first Vulkan adapter (lavapipe here), else the best adapter of any backend.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let gpu = gpu::open(&AdapterSelection::Backend("vulkan".into()), 1)
            .or_else(|_| gpu::open(&AdapterSelection::BestPerDevice, 1))
            .map(|mut g| g.remove(0))
            .unwrap_or_else(|e| panic!("this test needs a GPU adapter: {e}"));
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
pub mod kernels;
