//! Helpers shared by the kernel tests (the other files of this folder), which compare every kernel except
//! the plain matmul (`matmul.rs`) with the CPU reference (`crate::cpu`) on lavapipe, at
//! awkward sizes: tolerance constants and the activation tolerances, a lock that serialises the
//! GPU tests of a binary, comparisons, sentinel padding and buffer helpers.
//!
//! Tolerances, with u = 2^-24 (the f32 unit roundoff):
//! - Vulkan leaves exp, log, tanh, sqrt and division a few ULP of error, and tanh (specified as
//!   `sinh / cosh`, i.e. through `exp`) may carry an *absolute* error of a few ULP of 1 near 0.
//!   So a transcendental result may be off by `RTOL = 1e-5` relative (168 ULP, room for
//!   `exp`'s `3 + 2|x|` ULP up to |x| ~ 80) plus `EPS_ONE = 2^-20` (16 ULP of 1.0) times the
//!   magnitude of whatever multiplies a ~1 value that is then cancelled (`1 + tanh`, `1 - s`,
//!   `1 - tanh^2`); `FLUSH = f32::MIN_POSITIVE` allows subnormals flushed to zero.
//! - Identity and ReLU use no rounding at all (`max`, a select, a multiply by 0 or 1): exact.
//! - Sums of n terms (dot products, column sums, the loss sum) by either backend are within
//!   `n u sum|terms|` of the exact sum in any order (Higham 3.1, doubled for fused multiply-adds),
//!   so two backends differ by at most twice that.
//! - Elementwise updates (Adam, SGD, add_scaled): each correctly rounded or few-ULP operation
//!   adds its error in proportion to the magnitudes it combines; the bound is propagated
//!   through the three steps in f64 next to the reference.
//! - Softmax cross-entropy: the kernel forms `exp(z - lse)`, whose argument carries
//!   `u (|z| + |lse|)` of rounding, i.e. it is exact for logits perturbed by a few ULP; that
//!   relative error (5e-4 at |z| = 1e4) is part of the bound on each gradient.
//! - Copies (gather, through the host's lookup table) are exact: compared bit for bit.

use std::sync::{Mutex, MutexGuard};

use crate::gpu::Gpu;
use crate::spec::Activation;

pub const U: f64 = 1.0 / 16_777_216.0;
pub const RTOL: f64 = 1e-5;
pub const EPS_ONE: f64 = 1.0 / 1_048_576.0;
pub const FLUSH: f64 = f32::MIN_POSITIVE as f64;
pub const GELU_C: f64 = 0.797_884_560_8;
pub const GELU_A: f64 = 0.044_715;
/// The largest |act'| of any activation (GELU's, 1.129 at z ~ 1.6): how far an error of the
/// pre-activation can move the activated output.
pub const LIPSCHITZ: f64 = 1.13;
/// Marks floats a kernel must not touch.
pub const SENTINEL: f32 = -12345.5;

/// The GPU tests of each kernels_* file take turns on the shared device. They once had to: wgpu runs
/// a map callback on whichever thread's poll collects it, and `Gpu::read` used to give up
/// when its own `poll(Wait)` returned first ("a readback never completed"); it now polls
/// until its callback has reported. Taking turns keeps each test's timing its own.
/// A poisoned lock (a failed test) still serialises the rest.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fails on the first element off by more than `tol(i)` (NaN and infinities always fail
/// unless the two are bit-identical).
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let (g, w) = (got[i], want[i]);
        if g.to_bits() == w.to_bits() {
            continue;
        }
        let (err, t) = ((g as f64 - w as f64).abs(), tol(i));
        assert!(err <= t, "{what}: [{i}] = {g:e} but the reference is {w:e} (err {err:e} > tol {t:e})");
    }
}

pub fn assert_untouched(what: &str, got: &[f32]) {
    if let Some(i) = got.iter().position(|v| v.to_bits() != SENTINEL.to_bits()) {
        panic!("{what}: float {i} outside the output was overwritten with {}", got[i]);
    }
}

pub fn upload_u32(gpu: &Gpu, data: &[u32]) -> wgpu::Buffer {
    gpu.upload("test u32", data, wgpu::BufferUsages::COPY_SRC).expect("upload")
}

/// A 32- or 16-byte uniform the test rewrites between submissions, as the trainer does.
pub fn uniform_buffer(gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test uniform"),
        size: bytes,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// `SENTINEL` x `pad`, then `data`, then `SENTINEL` x `pad`.
pub fn padded(data: &[f32], pad: usize) -> Vec<f32> {
    let s = vec![SENTINEL; pad];
    [&s[..], data, &s[..]].concat()
}

pub fn split_padded(all: &[f32], pad: usize) -> (Vec<f32>, Vec<f32>) {
    let body = all[pad..all.len() - pad].to_vec();
    (body, [&all[..pad], &all[all.len() - pad..]].concat())
}

// ---------------------------------------------------------------- activation tolerances

/// Allowed |gpu - cpu| of `act(x)` (module header): exact for identity and ReLU; relative
/// for sigmoid (`1 / (1 + e)` keeps exp's relative error); tanh may be off by EPS_ONE near 0;
/// GELU's `0.5 x (1 + t)` turns tanh's EPS_ONE into `0.5 |x| EPS_ONE`.
pub fn forward_tol(act: Activation, x: f32, want: f32) -> f64 {
    let (x, w) = ((x as f64).abs(), (want as f64).abs());
    match act {
        Activation::Identity | Activation::Relu => 0.0,
        Activation::Sigmoid => RTOL * w + FLUSH,
        Activation::Tanh => RTOL * w + EPS_ONE,
        Activation::Gelu => RTOL * w + EPS_ONE * (0.5 * x).max(1.0) + FLUSH,
    }
}

/// How much an EPS_ONE error of the ~1 terms inside act'(z) is amplified: `s (1 - s)` by 1,
/// `1 - t^2` by 2, GELU's `0.5 z (1 - t^2) C (1 + 3 A z^2)` by `|z| C (1 + 3 A z^2)`.
pub fn grad_gain(act: Activation, z: f32) -> f64 {
    let z = z as f64;
    match act {
        Activation::Identity | Activation::Relu => 0.0,
        Activation::Sigmoid => 1.0,
        Activation::Tanh => 2.0,
        Activation::Gelu => 0.5 + z.abs() * GELU_C * (1.0 + 3.0 * GELU_A * z * z),
    }
}

pub fn backward_tol(act: Activation, dy: f32, z: f32, want: f32) -> f64 {
    match act {
        Activation::Identity | Activation::Relu => 0.0,
        _ => RTOL * (want as f64).abs() + EPS_ONE * (dy as f64).abs() * grad_gain(act, z) + FLUSH,
    }
}

/// Reads an rgba32float texture of `width` x `height` texels back as rows of `4 width` floats.
pub fn read_texture(g: &Gpu, tex: &wgpu::Texture) -> Vec<f32> {
    let (w, h) = (tex.width() as usize, tex.height() as usize);
    let row_bytes = (w * 16).next_multiple_of(256);
    let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buf = g.storage_buffer("texture readback", (row_bytes * h) as u64, usage).expect("buffer");
    let mut enc = g.device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        tex.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &buf,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row_bytes as u32),
                rows_per_image: Some(h as u32),
            },
        },
        wgpu::Extent3d { width: w as u32, height: h as u32, depth_or_array_layers: 1 },
    );
    g.queue.submit([enc.finish()]);
    let all: Vec<f32> = g.read(&buf, 0, row_bytes * h / 4).expect("read");
    all.chunks(row_bytes / 4).flat_map(|row| row[..4 * w].to_vec()).collect()
}
