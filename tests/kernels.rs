//! Every kernel except the plain matmul (tests/matmul.rs) against the CPU reference
//! (`wgtrain::cpu`), on lavapipe, at awkward sizes, plus the shape errors of each wrapper.
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
//!
//! The last two tests drive grids past 65535 workgroups in one dimension; they accept either
//! a refusal (`Err`) or a correct result.

mod common;

use std::sync::{Mutex, MutexGuard};

use common::*;
use wgtrain::cpu;
use wgtrain::kernels::{
    pack_pixels, pixel_lut, submit, GatherSources, GatherStep, Matmul, MatmulCall, OptimBuffers, StepUniform,
    Variant, XentCall,
};
use wgtrain::{Activation, Gpu, MatmulForm, Optimizer, StepScalars};

const U: f64 = 1.0 / 16_777_216.0;
const RTOL: f64 = 1e-5;
const EPS_ONE: f64 = 1.0 / 1_048_576.0;
const FLUSH: f64 = f32::MIN_POSITIVE as f64;
const GELU_C: f64 = 0.797_884_560_8;
const GELU_A: f64 = 0.044_715;
/// The largest |act'| of any activation (GELU's, 1.129 at z ~ 1.6): how far an error of the
/// pre-activation can move the activated output.
const LIPSCHITZ: f64 = 1.13;
const SIZES: [usize; 9] = [1, 3, 7, 63, 65, 128, 784, 1000, 50_890];
/// Marks floats a kernel must not touch.
const SENTINEL: f32 = -12345.5;

/// The GPU tests of this file take turns on the shared device. They once had to: wgpu runs
/// a map callback on whichever thread's poll collects it, and `Gpu::read` used to give up
/// when its own `poll(Wait)` returned first ("a readback never completed"); it now polls
/// until its callback has reported. Taking turns keeps each test's timing its own.
/// A poisoned lock (a failed test) still serialises the rest.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fails on the first element off by more than `tol(i)` (NaN and infinities always fail
/// unless the two are bit-identical).
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f64) {
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

fn assert_untouched(what: &str, got: &[f32]) {
    if let Some(i) = got.iter().position(|v| v.to_bits() != SENTINEL.to_bits()) {
        panic!("{what}: float {i} outside the output was overwritten with {}", got[i]);
    }
}

fn upload_u32(gpu: &Gpu, data: &[u32]) -> wgpu::Buffer {
    gpu.upload("test u32", data, wgpu::BufferUsages::COPY_SRC).expect("upload")
}

/// A 32- or 16-byte uniform the test rewrites between submissions, as the trainer does.
fn uniform_buffer(gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test uniform"),
        size: bytes,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// `SENTINEL` x `pad`, then `data`, then `SENTINEL` x `pad`.
fn padded(data: &[f32], pad: usize) -> Vec<f32> {
    let s = vec![SENTINEL; pad];
    [&s[..], data, &s[..]].concat()
}

fn split_padded(all: &[f32], pad: usize) -> (Vec<f32>, Vec<f32>) {
    let body = all[pad..all.len() - pad].to_vec();
    (body, [&all[..pad], &all[all.len() - pad..]].concat())
}

// ---------------------------------------------------------------- activations

/// Allowed |gpu - cpu| of `act(x)` (module header): exact for identity and ReLU; relative
/// for sigmoid (`1 / (1 + e)` keeps exp's relative error); tanh may be off by EPS_ONE near 0;
/// GELU's `0.5 x (1 + t)` turns tanh's EPS_ONE into `0.5 |x| EPS_ONE`.
fn forward_tol(act: Activation, x: f32, want: f32) -> f64 {
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
fn grad_gain(act: Activation, z: f32) -> f64 {
    let z = z as f64;
    match act {
        Activation::Identity | Activation::Relu => 0.0,
        Activation::Sigmoid => 1.0,
        Activation::Tanh => 2.0,
        Activation::Gelu => 0.5 + z.abs() * GELU_C * (1.0 + 3.0 * GELU_A * z * z),
    }
}

fn backward_tol(act: Activation, dy: f32, z: f32, want: f32) -> f64 {
    match act {
        Activation::Identity | Activation::Relu => 0.0,
        _ => RTOL * (want as f64).abs() + EPS_ONE * (dy as f64).abs() * grad_gain(act, z) + FLUSH,
    }
}

/// Runs forward and backward of `act` over `z` (with upstream `dy`) at odd offsets and
/// returns `(a, dz)` read back, after checking that nothing around the outputs changed.
fn run_activation(act: Activation, z: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let f = fixture();
    let n = z.len();
    // Inputs at offset 5 and 3, outputs at offset 2, so the offsets are exercised too.
    let zb = upload(&f.gpu, &padded(z, 5));
    let dyb = upload(&f.gpu, &padded(dy, 3));
    let ab = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let dzb = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let fwd = f.kernels.activation.forward(&f.gpu, act, n, (&zb, 5), (&ab, 2)).expect("record forward");
    let bwd = f
        .kernels
        .activation
        .backward(&f.gpu, act, n, (&dyb, 3), (&zb, 5), (&dzb, 2))
        .expect("record backward");
    submit(&f.gpu, &[&fwd, &bwd]);
    let (a, a_pad) = split_padded(&read(&f.gpu, &ab, n + 4), 2);
    let (dz, dz_pad) = split_padded(&read(&f.gpu, &dzb, n + 4), 2);
    assert_untouched("activation forward", &a_pad);
    assert_untouched("activation backward", &dz_pad);
    (a, dz)
}

#[test]
fn activations_match_the_cpu_forward_and_backward() {
    let _serial = serial();
    for act in Activation::ALL {
        for (s, &n) in SIZES.iter().enumerate() {
            // Pre-activations in [-6, 6): the whole curved part of every activation.
            let z: Vec<f32> = random(n, 100 + s as u64).iter().map(|v| v * 6.0).collect();
            let dy = random(n, 200 + s as u64);
            let (a, dz) = run_activation(act, &z, &dy);
            let want_a = cpu::activation_forward(&z, act);
            let want_dz = cpu::activation_backward(&dy, &z, act).expect("cpu backward");
            let name = format!("{act:?} n={n}");
            assert_close(&format!("{name} forward"), &a, &want_a, |i| forward_tol(act, z[i], want_a[i]));
            assert_close(&format!("{name} backward"), &dz, &want_dz, |i| {
                backward_tol(act, dy[i], z[i], want_dz[i])
            });
        }
    }
}

/// Large pre-activations (where a naive tanh is inf/inf and exp overflows) stay finite and
/// saturate like the CPU's. There the exact act' is 0 or 1 to within e^-30, so the gradient
/// may only carry the few-ULP error of its ~1 terms (gain 2, not GELU's cubic gain: a GPU
/// tanh that stops short of 1 there would be a wrong gradient, not a rounding).
#[test]
fn large_inputs_stay_finite_and_saturate() {
    let _serial = serial();
    let mags = [10.0f32, 15.0, 20.0, 44.0, 50.0, 88.0, 89.0, 100.0, 1e4, 1e6];
    let z: Vec<f32> = mags.iter().flat_map(|&m| [m, -m]).collect();
    let dy: Vec<f32> = (0..z.len()).map(|i| if i % 4 < 2 { 1.0 } else { -0.75 }).collect();
    for act in Activation::ALL {
        let (a, dz) = run_activation(act, &z, &dy);
        let want_a = cpu::activation_forward(&z, act);
        let want_dz = cpu::activation_backward(&dy, &z, act).expect("cpu backward");
        for (i, (&x, &y)) in a.iter().zip(&dz).enumerate() {
            assert!(
                x.is_finite() && y.is_finite(),
                "{act:?} at z = {}: forward {x}, backward {y} must be finite",
                z[i]
            );
        }
        assert_close(&format!("{act:?} forward, large z"), &a, &want_a, |i| {
            forward_tol(act, z[i], want_a[i])
        });
        assert_close(&format!("{act:?} backward, large z"), &dz, &want_dz, |i| match act {
            Activation::Identity | Activation::Relu => 0.0,
            _ => RTOL * (want_dz[i] as f64).abs() + 2.0 * EPS_ONE * (dy[i] as f64).abs() + FLUSH,
        });
    }
}

// ---------------------------------------------------------------- matmul epilogues

/// `sum_p |A(i,p) B(p,j)|` (+ |bias_j|) in f64: the scale of each output's rounding error.
fn magnitudes(
    form: MatmulForm,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f64> {
    let [ars, acs, brs, bcs] = form.strides(m, n, k);
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 =
                (0..k).map(|p| (a[i * ars + p * acs] as f64 * b[p * brs + j * bcs] as f64).abs()).sum();
            mag[i * n + j] = s + bias.map_or(0.0, |bb| (bb[j] as f64).abs());
        }
    }
    mag
}

/// Each backend's product is within `(2k + 1) u mag` of exact (tests/matmul.rs), plus `u mag`
/// for the bias add; the two differ by at most twice that.
fn product_tol(k: usize, mag: f64) -> f64 {
    2.0 * (2 * k + 2) as f64 * U * mag + FLUSH
}

/// Reads `len` floats at `off` of a buffer padded with sentinels, checking the sentinels.
fn read_region(what: &str, buf: &wgpu::Buffer, off: usize, len: usize, total: usize) -> Vec<f32> {
    let all = read(&fixture().gpu, buf, total);
    assert_untouched(what, &all[..off]);
    assert_untouched(what, &all[off + len..]);
    all[off..off + len].to_vec()
}

/// Forward layer `C = act(A W + bias)` with the pre-activation stored to `z`, every variant
/// that supports the shape, against `cpu::matmul` + `add_bias` + `activation_forward`.
#[test]
fn matmul_forward_epilogue_bias_activation_and_preactivation() {
    let _serial = serial();
    let f = fixture();
    let shapes = [(1, 1, 1), (3, 7, 65), (65, 63, 7), (65, 12, 8), (128, 64, 784), (1000, 10, 64)];
    let mut ran = std::collections::BTreeSet::new();
    for (s, &(m, n, k)) in shapes.iter().enumerate() {
        let a = random(m * k, 300 + s as u64);
        let w = random(k * n, 400 + s as u64);
        let bias = random(n, 500 + s as u64);
        // The bias follows W in the same buffer, 16-byte aligned as in the model's layout.
        let bias_off = (k * n).next_multiple_of(4);
        let mut wb = w.clone();
        wb.resize(bias_off, 0.0);
        wb.extend(&bias);
        let mut want_z = cpu::matmul(MatmulForm::AB, m, n, k, &a, &w).expect("cpu matmul");
        cpu::add_bias(&mut want_z, &bias).expect("cpu bias");
        let mag = magnitudes(MatmulForm::AB, m, n, k, &a, &w, Some(&bias));
        let (ab, bb) = (upload(&f.gpu, &a), upload(&f.gpu, &wb));
        // C at float 4 and z at float 3 of sentinel-filled buffers: offsets honoured, nothing
        // outside the outputs written.
        let (c_off, z_off, total) = (4, 3, m * n + 8);
        for variant in Variant::ALL {
            for act in Activation::ALL {
                let cb = upload(&f.gpu, &vec![SENTINEL; total]);
                let zb = upload(&f.gpu, &vec![SENTINEL; total]);
                let call = MatmulCall {
                    form: MatmulForm::AB,
                    m,
                    n,
                    k,
                    a: (&ab, 0),
                    b: (&bb, 0),
                    c: (&cb, c_off),
                    bias: Some(bias_off),
                    act,
                    z: Some((&zb, z_off)),
                    act_backward: false,
                };
                if !Matmul::supports(variant, &call) {
                    continue;
                }
                ran.insert(variant.name());
                let d = f.kernels.matmul.record(&f.gpu, variant, &call).expect("record");
                submit(&f.gpu, &[&d]);
                let name = format!("{} {act:?} m={m} n={n} k={k}", variant.name());
                let z = read_region(&format!("{name} z"), &zb, z_off, m * n, total);
                let c = read_region(&format!("{name} C"), &cb, c_off, m * n, total);
                let want_c = cpu::activation_forward(&want_z, act);
                assert_close(&format!("{name} pre-activation"), &z, &want_z, |i| product_tol(k, mag[i]));
                assert_close(&format!("{name} output"), &c, &want_c, |i| {
                    forward_tol(act, want_z[i], want_c[i]) + LIPSCHITZ * product_tol(k, mag[i])
                });
            }
        }
    }
    for v in Variant::ALL {
        if v != Variant::V4Atb && v != Variant::V4Abt {
            assert!(ran.contains(v.name()), "{} ran on no forward shape", v.name());
        }
    }
}

/// Backward through a layer: `dX = (dY W^T) * act'(z)` with the saved pre-activation, every
/// variant that supports the shape, against `cpu::matmul` then `activation_backward`.
#[test]
fn matmul_abt_epilogue_applies_the_activation_backward() {
    let _serial = serial();
    let f = fixture();
    let shapes = [(1, 1, 1), (7, 65, 63), (65, 7, 8), (63, 128, 12), (128, 784, 64), (128, 64, 10)];
    let mut ran = std::collections::BTreeSet::new();
    for (s, &(m, n, k)) in shapes.iter().enumerate() {
        let dy = random(m * k, 600 + s as u64);
        let w = random(n * k, 700 + s as u64);
        let z: Vec<f32> = random(m * n, 800 + s as u64).iter().map(|v| v * 4.0).collect();
        let want_g = cpu::matmul(MatmulForm::ABt, m, n, k, &dy, &w).expect("cpu matmul");
        let mag = magnitudes(MatmulForm::ABt, m, n, k, &dy, &w, None);
        let (ab, bb, zb) = (upload(&f.gpu, &dy), upload(&f.gpu, &w), upload(&f.gpu, &padded(&z, 1)));
        let total = m * n + 8;
        for act in Activation::ALL {
            let want = cpu::activation_backward(&want_g, &z, act).expect("cpu backward");
            let slope = cpu::activation_backward(&vec![1.0; m * n], &z, act).expect("cpu act'");
            for variant in Variant::ALL {
                let cb = upload(&f.gpu, &vec![SENTINEL; total]);
                let call = MatmulCall {
                    form: MatmulForm::ABt,
                    m,
                    n,
                    k,
                    a: (&ab, 0),
                    b: (&bb, 0),
                    c: (&cb, 4),
                    bias: None,
                    act,
                    z: Some((&zb, 1)),
                    act_backward: true,
                };
                if !Matmul::supports(variant, &call) {
                    continue;
                }
                ran.insert(variant.name());
                let d = f.kernels.matmul.record(&f.gpu, variant, &call).expect("record");
                submit(&f.gpu, &[&d]);
                let name = format!("{} {act:?} m={m} n={n} k={k}", variant.name());
                let got = read_region(&name, &cb, 4, m * n, total);
                assert_close(&name, &got, &want, |i| {
                    backward_tol(act, want_g[i], z[i], want[i])
                        + (slope[i] as f64).abs() * product_tol(k, mag[i])
                });
                // The saved pre-activation is only read.
                let (z_after, z_pad) = split_padded(&read(&f.gpu, &zb, m * n + 2), 1);
                assert_eq!(z_after, z, "{name}: the saved pre-activation was modified");
                assert_untouched(&format!("{name} z"), &z_pad);
            }
        }
    }
    for v in Variant::ALL {
        if v != Variant::V4Ab && v != Variant::V4Atb {
            assert!(ran.contains(v.name()), "{} ran on no ABt shape", v.name());
        }
    }
}

#[test]
fn matmul_epilogue_shape_errors_are_errors() {
    let _serial = serial();
    let f = fixture();
    let buf = zeros(&f.gpu, 16);
    let small = zeros(&f.gpu, 4);
    let base = MatmulCall::plain(MatmulForm::AB, 2, 2, 2, &buf, &buf, &buf);
    let cases: [(&str, MatmulCall<'_>); 3] = [
        ("the bias runs past B's buffer", MatmulCall { bias: Some(15), ..base }),
        ("the pre-activation buffer is too small", MatmulCall { z: Some((&small, 1)), ..base }),
        (
            "an activation backward without its saved pre-activation",
            MatmulCall { act_backward: true, act: Activation::Relu, ..base },
        ),
    ];
    for (why, call) in cases {
        for variant in [Variant::Naive, Variant::V4Ab] {
            assert!(
                f.kernels.matmul.record(&f.gpu, variant, &call).is_err(),
                "{}: {why} must be an Err",
                variant.name()
            );
        }
    }
}

// ---------------------------------------------------------------- softmax cross-entropy

/// Per-row quantities in f64: (lse, |ln sum|).
fn lse_f64(row: &[f32]) -> (f64, f64) {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let ln_sum = row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
    (m + ln_sum, ln_sum)
}

/// One backend's error on row r's loss `lse - z_y`: rounding of `m + ln(sum)` and of the
/// difference (u each on |lse| and |z_y|, doubled), the sum of `classes` exps (their RTOL and
/// `classes u`), and log's 2^-21 absolute error near 1.
fn row_loss_err(row: &[f32], y: usize) -> f64 {
    let (lse, ln_sum) = lse_f64(row);
    4.0 * U * (lse.abs() + (row[y] as f64).abs())
        + RTOL * (1.0 + ln_sum)
        + row.len() as f64 * U
        + 1.0 / 2_097_152.0
}

/// One backend's error on `(p_j - onehot) * scale`: the kernel forms `exp(z_j - lse)`, whose
/// argument carries `u (|z_j| + |lse|)` of rounding (as if the logits were perturbed by a few
/// ULP: at |z| = 1e4 that is 5e-4 relative), exp's RTOL, the sum's `classes u`, and the
/// rounding of the subtraction of the one-hot.
fn dlogit_err(row: &[f32], j: usize, scale: f32) -> f64 {
    let (lse, _) = lse_f64(row);
    let p = (row[j] as f64 - lse).exp();
    (scale as f64).abs()
        * (p * (RTOL + 4.0 * U * ((row[j] as f64).abs() + lse.abs()) + 2.0 * row.len() as f64 * U) + 2.0 * U)
        + FLUSH
}

/// Logits in [-5, 5); even rows labelled with their argmax so that the correct count is not
/// tiny; with 7+ rows, row 1 is all equal (label 0: correct, the first maximum wins) and row 2
/// ties classes 0 and 1 with label 1 (wrong, for the same reason).
fn xent_case(rows: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut logits: Vec<f32> = random(rows * classes, seed).iter().map(|v| v * 5.0).collect();
    let picks = random(rows, seed + 1);
    let mut labels: Vec<u8> =
        picks.iter().map(|p| (((p + 1.0) * 0.5 * classes as f32) as usize).min(classes - 1) as u8).collect();
    for r in (0..rows).step_by(2) {
        let row = &logits[r * classes..(r + 1) * classes];
        let arg = (1..classes).fold(0, |a, j| if row[j] > row[a] { j } else { a });
        labels[r] = arg as u8;
    }
    if rows >= 7 {
        logits[classes..2 * classes].fill(0.5);
        labels[1] = 0;
        logits[2 * classes..3 * classes].fill(-1.0);
        logits[2 * classes] = 2.0;
        logits[2 * classes + 1] = 2.0;
        labels[2] = 1;
    }
    (logits, labels)
}

struct XentRun {
    metrics: Vec<f32>,
    dlogits: Vec<f32>,
}

/// One launch with the metrics at `slot` of a 6-float buffer of sentinels around zeros, run
/// `times` times; with `grad`, dlogits at float 2 of a padded buffer.
fn run_xent(logits: &[f32], labels: &[u8], classes: usize, scale: f32, grad: bool, times: usize) -> XentRun {
    let f = fixture();
    let rows = labels.len();
    let lb = upload(&f.gpu, &padded(logits, 3));
    let yb = upload_u32(&f.gpu, &[vec![7u32; 1], labels.iter().map(|&y| y as u32).collect()].concat());
    let metrics = upload(&f.gpu, &[SENTINEL, SENTINEL, 0.0, 0.0, SENTINEL, SENTINEL]);
    let db = upload(&f.gpu, &padded(&vec![0.0; rows * classes], 2));
    let call = XentCall {
        rows,
        classes,
        logits: (&lb, 3),
        labels: (&yb, 1),
        dlogits: grad.then_some((&db, 2)),
        scale,
        metrics: (&metrics, 2),
    };
    let d = f.kernels.xent.record(&f.gpu, &call).expect("record");
    for _ in 0..times {
        submit(&f.gpu, &[&d]);
    }
    let m = read(&f.gpu, &metrics, 6);
    assert_untouched("metrics around the slot", &[&m[..2], &m[4..]].concat());
    let (dlogits, pad) = split_padded(&read(&f.gpu, &db, rows * classes + 4), 2);
    assert_untouched("dlogits", &pad);
    XentRun { metrics: m[2..4].to_vec(), dlogits }
}

#[test]
fn softmax_xent_matches_the_cpu_loss_count_and_gradient() {
    let _serial = serial();
    for &rows in &[1usize, 7, 128, 1000] {
        for &classes in &[2usize, 10, 65] {
            let (logits, labels) = xent_case(rows, classes, (rows * 100 + classes) as u64);
            let scale = 1.0 / rows as f32;
            let want = cpu::softmax_xent(&logits, &labels, classes, scale).expect("cpu xent");
            let got = run_xent(&logits, &labels, classes, scale, true, 1);
            let name = format!("rows={rows} classes={classes}");
            let row = |r: usize| &logits[r * classes..(r + 1) * classes];
            // Both backends within sum_r err_r of the exact row losses, and their summation
            // orders (sequential here, strided + tree there) each within rows u sum|loss_r|.
            let loss_abs: f64 =
                (0..rows).map(|r| lse_f64(row(r)).0 - row(r)[labels[r] as usize] as f64).sum();
            let tol = 2.0 * (0..rows).map(|r| row_loss_err(row(r), labels[r] as usize)).sum::<f64>()
                + 2.0 * rows as f64 * U * loss_abs;
            let err = (got.metrics[0] as f64 - want.loss_sum as f64).abs();
            assert!(
                err <= tol,
                "{name}: loss sum {} but the cpu says {} (err {err:e} > tol {tol:e})",
                got.metrics[0],
                want.loss_sum
            );
            assert_eq!(got.metrics[1], want.correct as f32, "{name}: correct count");
            assert_close(&format!("{name} dlogits"), &got.dlogits, &want.dlogits, |i| {
                2.0 * dlogit_err(row(i / classes), i % classes, scale)
            });
        }
    }
}

/// Logits of +-1e4 (exp overflows without the max subtracted): finite, and equal to an f64
/// log-sum-exp within one backend's error (row_loss_err, dlogit_err).
#[test]
fn softmax_xent_is_stable_for_huge_logits() {
    let _serial = serial();
    let classes = 3;
    let logits: Vec<f32> = vec![
        1e4, 9999.5, -1e4, // two near the top
        -1e4, -1e4, -9999.0, // all very negative
        1e4, 1e4, 1e4, // three-way tie
        -1e4, 1e4, 0.0, // one dominates, label wrong
    ];
    let labels = [0u8, 2, 1, 0];
    let got = run_xent(&logits, &labels, classes, 1.0, true, 1);
    let row = |r: usize| &logits[r * classes..(r + 1) * classes];
    let mut want_loss = 0.0;
    let mut tol = 0.0;
    for (r, &y) in labels.iter().enumerate() {
        let (lse, _) = lse_f64(row(r));
        want_loss += lse - row(r)[y as usize] as f64;
        tol += row_loss_err(row(r), y as usize);
        for j in 0..classes {
            let want = (row(r)[j] as f64 - lse).exp() - if j == y as usize { 1.0 } else { 0.0 };
            let g = got.dlogits[r * classes + j] as f64;
            let t = dlogit_err(row(r), j, 1.0);
            assert!(
                g.is_finite() && (g - want).abs() <= t,
                "row {r} class {j}: dlogit {g:e}, f64 says {want:e} (tol {t:e})"
            );
        }
    }
    tol += 4.0 * U * want_loss.abs();
    let loss = got.metrics[0] as f64;
    assert!(
        loss.is_finite() && (loss - want_loss).abs() <= tol,
        "loss sum {loss}, f64 says {want_loss} (tol {tol:e})"
    );
    // Row 0 (label 0 = max), row 1 (label 2 = max); row 2 ties: first index 0 != label 1.
    assert_eq!(got.metrics[1], 2.0, "correct count");
}

/// `metrics[slot] +=`: a second launch adds the same sums (doubling is exact in binary), and
/// without a gradient buffer nothing else is written (the metrics buffer stands in for the
/// unbound dlogits, so a stray gradient write would clobber the sentinels around the slot).
#[test]
fn softmax_xent_metrics_accumulate_and_evaluation_writes_no_gradient() {
    let _serial = serial();
    let (classes, rows) = (10, 128);
    let (logits, labels) = xent_case(rows, classes, 77);
    let once = run_xent(&logits, &labels, classes, 0.5, true, 1);
    let twice = run_xent(&logits, &labels, classes, 0.5, true, 2);
    assert_eq!(
        twice.metrics,
        [2.0 * once.metrics[0], 2.0 * once.metrics[1]],
        "two launches must add up exactly"
    );
    assert_eq!(twice.dlogits, once.dlogits, "the gradient is overwritten, not accumulated");
    let eval = run_xent(&logits, &labels, classes, 0.5, false, 1);
    assert_eq!(eval.metrics, once.metrics, "evaluation computes the same loss and count");
    let (_, want_correct) = cpu::xent_loss(&logits, &labels, classes).expect("cpu loss");
    assert_eq!(eval.metrics[1], want_correct as f32, "evaluation correct count");
}

// ---------------------------------------------------------------- reductions

#[test]
fn column_sums_match_the_cpu() {
    let _serial = serial();
    let f = fixture();
    for &rows in &[1usize, 3, 7, 63, 65, 128, 784, 1000] {
        for &cols in &[1usize, 7, 65, 300] {
            let x = random(rows * cols, (rows * 7 + cols) as u64);
            let want = cpu::column_sums(&x, rows, cols).expect("cpu column sums");
            // Input at float 1, output at float 2: offsets honoured, neighbours untouched.
            let xb = upload(&f.gpu, &padded(&x, 1));
            let ob = upload(&f.gpu, &padded(&vec![0.0; cols], 2));
            let d = f.kernels.reduce.column_sums(&f.gpu, rows, cols, (&xb, 1), (&ob, 2)).expect("record");
            submit(&f.gpu, &[&d]);
            let (got, pad) = split_padded(&read(&f.gpu, &ob, cols + 4), 2);
            assert_untouched("column sums", &pad);
            // Each backend's sum of `rows` terms is within rows u sum|x| of exact, in any order.
            assert_close(&format!("column sums {rows}x{cols}"), &got, &want, |j| {
                let abs: f64 = (0..rows).map(|i| (x[i * cols + j] as f64).abs()).sum();
                2.0 * rows as f64 * U * abs
            });
        }
    }
}

/// `scale` is one correctly rounded multiply (Vulkan requires it of `*`): bit for bit.
/// `add_scaled` is a multiply and an add, possibly fused: within 2u (|out| + |alpha x|).
/// The largest length needs more than 65535 workgroups, so the grid folds into y.
#[test]
fn scale_and_add_scaled_match_plain_rust() {
    let _serial = serial();
    let f = fixture();
    let folded = 65_535 * 256 + 1000;
    for &n in &[1usize, 3, 7, 65, 1000, 50_890, folded] {
        let out = random(n, n as u64);
        let x = random(n, n as u64 + 1);
        let alpha = -0.37f32;

        let ob = upload(&f.gpu, &padded(&out, 1));
        let d = f.kernels.reduce.scale(&f.gpu, n, alpha, (&ob, 1)).expect("record scale");
        submit(&f.gpu, &[&d]);
        let (got, pad) = split_padded(&read(&f.gpu, &ob, n + 2), 1);
        assert_untouched("scale", &pad);
        let want: Vec<f32> = out.iter().map(|v| alpha * v).collect();
        assert_close(&format!("scale n={n}"), &got, &want, |_| 0.0);

        let ob = upload(&f.gpu, &padded(&out, 1));
        let xb = upload(&f.gpu, &padded(&x, 2));
        let d = f.kernels.reduce.add_scaled(&f.gpu, n, alpha, (&xb, 2), (&ob, 1)).expect("record add_scaled");
        submit(&f.gpu, &[&d]);
        let (got, pad) = split_padded(&read(&f.gpu, &ob, n + 2), 1);
        assert_untouched("add_scaled", &pad);
        let want: Vec<f32> = out.iter().zip(&x).map(|(o, v)| o + alpha * v).collect();
        assert_close(&format!("add_scaled n={n}"), &got, &want, |i| {
            2.0 * U * ((out[i] as f64).abs() + (alpha as f64 * x[i] as f64).abs())
        });
    }
}

// ---------------------------------------------------------------- optimizers

/// Error bounds of one backend's (p, m, v) after each step, propagated in f64 alongside the
/// CPU reference (whose values stand in for the exact ones):
/// - m, v: `b m + (1 - b) g` rounds at most twice (or once, fused) on each term: `2u` times
///   the terms' magnitudes, plus the previous bound times b.
/// - the Adam update `lr m^ / (sqrt(v^) + eps)`: the errors of m and v through its partial
///   derivatives, plus `12u` relative for its own ops (sqrt and division are a few ULP on
///   Vulkan, the three products correctly rounded).
/// - p: the subtraction rounds (u |p|), the decay `p - lr wd p` another `2u |p|`.
///
/// Both backends obey the bound, so they may differ by twice it.
struct Bounds {
    p: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Bounds {
    fn new(n: usize) -> Self {
        Bounds { p: vec![0.0; n], m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// `[p, m, v]` before the step, `[m, v]` after it (the CPU's).
    fn adam(&mut self, s: &StepScalars, g: &[f32], [p, m_prev, v_prev]: [&[f32]; 3], [m, v]: [&[f32]; 2]) {
        let (b1, b2, lr) = (s.beta1 as f64, s.beta2 as f64, s.lr as f64);
        for i in 0..p.len() {
            let g = g[i] as f64;
            self.m[i] = b1 * self.m[i] + 2.0 * U * (b1 * (m_prev[i] as f64).abs() + (1.0 - b1) * g.abs());
            self.v[i] = b2 * self.v[i] + 2.0 * U * (b2 * v_prev[i] as f64 + (1.0 - b2) * g * g);
            let mh = m[i] as f64 * s.inv_bias1 as f64;
            let sv = (v[i] as f64 * s.inv_bias2 as f64).sqrt();
            let den = sv + s.eps as f64;
            let upd = lr * mh.abs() / den;
            // d upd / d m = lr ib1 / den; d upd / d v = upd ib2 / (2 sv den) (bounded via den^2).
            let dv = if sv > 0.0 { upd * s.inv_bias2 as f64 / (2.0 * sv * den) } else { 0.0 };
            let d_upd = lr * s.inv_bias1 as f64 / den * self.m[i] + dv * self.v[i] + 12.0 * U * upd;
            // The decay's product and subtraction, when it runs.
            let decay = if s.weight_decay > 0.0 { 2.0 * U * (p[i] as f64).abs() } else { 0.0 };
            self.p[i] += d_upd + decay + U * (p[i] as f64).abs();
        }
    }

    fn sgd(&mut self, s: &StepScalars, p: &[f32], g: &[f32], u_prev: &[f32], u: &[f32]) {
        let (mu, lr) = (s.beta1 as f64, s.lr as f64);
        for i in 0..p.len() {
            self.m[i] = mu * self.m[i] + 2.0 * U * (mu * (u_prev[i] as f64).abs() + (g[i] as f64).abs());
            self.p[i] += lr * self.m[i] + 2.0 * U * (lr * (u[i] as f64).abs() + (p[i] as f64).abs());
        }
    }
}

fn check_optimizer(opt: Optimizer, n: usize) {
    let f = fixture();
    let mut p: Vec<f32> = random(n, 900 + n as u64);
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (pb, mb) = (upload(&f.gpu, &p), zeros(&f.gpu, n));
    // SGD leaves v alone: sentinels there prove it.
    let is_sgd = matches!(opt, Optimizer::Sgd { .. });
    let vb = upload(&f.gpu, &vec![if is_sgd { SENTINEL } else { 0.0 }; n]);
    let gb = zeros(&f.gpu, n);
    let step = uniform_buffer(&f.gpu, 32);
    let d = f
        .kernels
        .optim
        .record(&f.gpu, &opt, n, &OptimBuffers { params: &pb, grads: &gb, m: &mb, v: &vb, step: &step })
        .expect("record");
    let mut bounds = Bounds::new(n);
    for t in 1..=3u64 {
        // A new gradient per step, shrinking with t so that the moments partly cancel, and
        // spread over 1 .. 1e-7 across elements so that eps matters for some.
        let g: Vec<f32> = random(n, 1000 + t + n as u64)
            .iter()
            .enumerate()
            .map(|(i, x)| x / t as f32 * 10f32.powi(-((i % 8) as i32)))
            .collect();
        let s = opt.step_scalars(t);
        f.gpu.write(&gb, 0, bytemuck::cast_slice(&g));
        f.gpu.write(&step, 0, bytemuck::bytes_of(&StepUniform::from(s)));
        submit(&f.gpu, &[&d]);
        let (p_prev, m_prev, v_prev) = (p.clone(), m.clone(), v.clone());
        if is_sgd {
            cpu::sgd_step(&mut p, &g, &mut m, &s).expect("cpu sgd");
            bounds.sgd(&s, &p_prev, &g, &m_prev, &m);
        } else {
            cpu::adam_step(&mut p, &g, &mut m, &mut v, &s).expect("cpu adam");
            bounds.adam(&s, &g, [&p_prev, &m_prev, &v_prev], [&m, &v]);
        }
        let name = format!("{opt:?} n={n} step {t}");
        assert_close(&format!("{name} params"), &read(&f.gpu, &pb, n), &p, |i| 2.0 * bounds.p[i] + FLUSH);
        assert_close(&format!("{name} m"), &read(&f.gpu, &mb, n), &m, |i| 2.0 * bounds.m[i] + FLUSH);
        if is_sgd {
            assert_untouched(&format!("{name} v"), &read(&f.gpu, &vb, n));
        } else {
            assert_close(&format!("{name} v"), &read(&f.gpu, &vb, n), &v, |i| 2.0 * bounds.v[i] + FLUSH);
        }
    }
}

/// Lengths that are multiples of 4 run the vec4 kernels (optim_vec4.wgsl), others the scalar.
const OPTIM_SIZES: [usize; 4] = [1, 4, 50_888, 50_890];

#[test]
fn adam_matches_the_cpu_for_three_steps() {
    let _serial = serial();
    for n in OPTIM_SIZES {
        check_optimizer(Optimizer::adam(1e-3), n);
        check_optimizer(
            Optimizer::Adam { lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-7, weight_decay: 0.1 },
            n,
        );
    }
}

#[test]
fn sgd_with_momentum_matches_the_cpu_for_three_steps() {
    let _serial = serial();
    for n in OPTIM_SIZES {
        check_optimizer(Optimizer::sgd(0.05, 0.9), n);
        check_optimizer(Optimizer::sgd(0.1, 0.0), n);
    }
}

// ---------------------------------------------------------------- gather

/// A batch assembled on the device equals the CPU's `lut[pixel]` bit for bit, labels exactly;
/// the same dispatch replayed after rewriting the step uniform gathers the next batch.
/// Cases `(features, extra words per image, x offset)`: a full MNIST row at an odd offset
/// (scalar kernel) and at an aligned one (gather_vec4.wgsl); 7 features, whose last word has
/// a padding byte; and images stored with a spare word (`words > features / 4`, which
/// `GatherSources` allows), filled with 0xdeadbeef that must never reach x.
#[test]
fn gather_copies_the_permuted_batch_exactly() {
    let _serial = serial();
    let f = fixture();
    let lut = pixel_lut();
    for (features, extra, x_off) in [(784usize, 0usize, 3usize), (784, 0, 4), (7, 0, 3), (8, 1, 4), (8, 1, 3)]
    {
        let case = format!("features={features} extra words={extra} x_off={x_off}");
        let images = 50;
        let pixels: Vec<u8> = (0..images * features).map(|i| ((i * 7919 + i / 13) % 256) as u8).collect();
        let labels: Vec<u32> = (0..images as u32).map(|i| (i * 3 + 1) % 10).collect();
        // A permutation of the images (37 is coprime with 50).
        let perm: Vec<u32> = (0..images as u32).map(|i| (i * 37 + 11) % images as u32).collect();
        let (tight, tight_words) = pack_pixels(&pixels, features);
        assert_eq!(tight_words, features.div_ceil(4), "pack_pixels: words per image");
        let words = tight_words + extra;
        let packed: Vec<u32> = tight
            .chunks_exact(tight_words)
            .flat_map(|img| img.iter().copied().chain(std::iter::repeat_n(0xdead_beef, extra)))
            .collect();
        let (pixb, lb, permb) =
            (upload_u32(&f.gpu, &packed), upload_u32(&f.gpu, &labels), upload_u32(&f.gpu, &perm));
        let lutb = upload(&f.gpu, &lut);
        let step = uniform_buffer(&f.gpu, 16);
        let rows = 13;
        let xb = upload(&f.gpu, &padded(&vec![0.0; rows * features], x_off));
        let yb = upload_u32(&f.gpu, &vec![u32::MAX; rows + 1]);
        let src = GatherSources {
            pixels: &pixb,
            words,
            features,
            labels: &lb,
            perm: &permb,
            lut: &lutb,
            step: &step,
        };
        let d = f.kernels.gather.record(&f.gpu, rows, &src, (&xb, x_off), &yb).expect("record");
        for start in [5usize, 37] {
            f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep { start: start as u32, pad: [0; 3] }));
            submit(&f.gpu, &[&d]);
            let (x, pad) = split_padded(&read(&f.gpu, &xb, rows * features + 2 * x_off), x_off);
            assert_untouched(&format!("gather x, {case} ({})", d.label()), &pad);
            let y = f.gpu.read::<u32>(&yb, 0, rows + 1).expect("read labels");
            for r in 0..rows {
                let image = perm[start + r] as usize;
                let want: Vec<u32> = pixels[image * features..(image + 1) * features]
                    .iter()
                    .map(|&p| lut[p as usize].to_bits())
                    .collect();
                let got: Vec<u32> = x[r * features..(r + 1) * features].iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{case} start={start} ({}): row {r} (image {image})", d.label());
                assert_eq!(y[r], labels[image], "{case} start={start}: label of row {r}");
            }
            assert_eq!(y[rows], u32::MAX, "{case}: the label past the batch was written");
        }
    }
}

// ---------------------------------------------------------------- shape errors

/// Zero sizes and buffers too small are `Err` from every wrapper, never a panic or a GPU
/// validation error. (Buffers are allocated in 16-byte units, so "too small" asks for more
/// than the rounded-up size.)
#[test]
fn shape_errors_are_errors() {
    let _serial = serial();
    let f = fixture();
    let (g, k) = (&f.gpu, &f.kernels);
    let b16 = zeros(g, 16);
    let act = Activation::Tanh;
    let checks: Vec<(&str, bool)> = vec![
        ("activation of length 0", k.activation.forward(g, act, 0, (&b16, 0), (&b16, 0)).is_err()),
        (
            "activation past the input",
            k.activation.forward(g, act, 17, (&b16, 0), (&zeros(g, 32), 0)).is_err(),
        ),
        (
            "activation past the output via offset",
            k.activation.forward(g, act, 16, (&zeros(g, 32), 0), (&b16, 1)).is_err(),
        ),
        (
            "activation backward past z",
            k.activation.backward(g, act, 20, (&zeros(g, 32), 0), (&b16, 0), (&zeros(g, 32), 0)).is_err(),
        ),
        ("column sums of 0 rows", k.reduce.column_sums(g, 0, 4, (&b16, 0), (&b16, 0)).is_err()),
        ("column sums past the input", k.reduce.column_sums(g, 5, 4, (&b16, 0), (&b16, 0)).is_err()),
        ("column sums past the output", k.reduce.column_sums(g, 1, 8, (&b16, 0), (&b16, 10)).is_err()),
        ("scale of length 0", k.reduce.scale(g, 0, 2.0, (&b16, 0)).is_err()),
        ("scale past the buffer", k.reduce.scale(g, 16, 2.0, (&b16, 1)).is_err()),
        (
            "add_scaled past the input",
            k.reduce.add_scaled(g, 17, 2.0, (&b16, 0), (&zeros(g, 32), 0)).is_err(),
        ),
    ];
    for (what, is_err) in checks {
        assert!(is_err, "{what} must be an Err");
    }

    let labels = upload_u32(g, &[0; 4]);
    let (metrics, dl16) = (zeros(g, 16), zeros(g, 16));
    let xent = |rows, classes, dl: Option<&wgpu::Buffer>, metrics_off| {
        k.xent
            .record(
                g,
                &XentCall {
                    rows,
                    classes,
                    logits: (&b16, 0),
                    labels: (&labels, 0),
                    dlogits: dl.map(|d| (d, 0)),
                    scale: 1.0,
                    metrics: (&metrics, metrics_off),
                },
            )
            .is_err()
    };
    assert!(xent(0, 4, None, 0), "softmax_xent of 0 rows must be an Err");
    assert!(xent(4, 1, None, 0), "softmax_xent of one class must be an Err");
    assert!(xent(4, 5, None, 0), "softmax_xent past the logits must be an Err");
    assert!(xent(4, 4, Some(&zeros(g, 8)), 0), "softmax_xent past dlogits must be an Err");
    assert!(xent(8, 2, None, 0), "softmax_xent past the labels must be an Err");
    assert!(xent(2, 2, None, 15), "softmax_xent metrics past the buffer must be an Err");
    assert!(!xent(4, 4, Some(&dl16), 14), "a fitting softmax_xent call is Ok");

    let step = uniform_buffer(g, 32);
    let adam = Optimizer::adam(1e-3);
    let optim = |len, small: &wgpu::Buffer| {
        k.optim
            .record(
                g,
                &adam,
                len,
                &OptimBuffers { params: &b16, grads: &b16, m: small, v: &b16, step: &step },
            )
            .is_err()
    };
    assert!(optim(0, &b16), "an optimizer over 0 parameters must be an Err");
    // The step uniform is bound as 32 bytes: a shorter or non-uniform buffer is an Err.
    for (why, bad_step) in [("16 bytes", uniform_buffer(g, 16)), ("a storage buffer", zeros(g, 8))] {
        let b = OptimBuffers { params: &b16, grads: &b16, m: &b16, v: &b16, step: &bad_step };
        assert!(
            k.optim.record(g, &adam, 16, &b).is_err(),
            "an optimizer step uniform of {why} must be an Err"
        );
    }
    assert!(optim(16, &zeros(g, 8)), "an optimizer with a short moment buffer must be an Err");
    assert!(!optim(16, &b16), "a fitting optimizer call is Ok");

    let pix = upload_u32(g, &[0; 8]);
    let gstep = uniform_buffer(g, 16);
    let lut = upload(g, &pixel_lut());
    let (perm, y4) = (upload_u32(g, &[0; 4]), upload_u32(g, &[0; 4]));
    let gather = |rows, features, words, x: &wgpu::Buffer, x_off| {
        let src = GatherSources {
            pixels: &pix,
            words,
            features,
            labels: &labels,
            perm: &perm,
            lut: &lut,
            step: &gstep,
        };
        k.gather.record(g, rows, &src, (x, x_off), &y4).is_err()
    };
    assert!(gather(0, 4, 1, &b16, 0), "a gather of 0 rows must be an Err");
    assert!(gather(2, 0, 1, &b16, 0), "a gather of 0 features must be an Err");
    assert!(gather(2, 9, 2, &b16, 0), "9 features do not fit 2 words: must be an Err");
    assert!(gather(2, 8, 2, &b16, 1), "a gather past x must be an Err");
    assert!(gather(5, 1, 1, &zeros(g, 64), 0), "a gather past the label output must be an Err");
    assert!(!gather(2, 8, 2, &b16, 0), "a fitting gather is Ok");
    let short_step = uniform_buffer(g, 4);
    let src = GatherSources {
        pixels: &pix,
        words: 2,
        features: 8,
        labels: &labels,
        perm: &perm,
        lut: &lut,
        step: &short_step,
    };
    assert!(
        k.gather.record(g, 2, &src, (&b16, 0), &y4).is_err(),
        "a 4-byte gather step uniform must be an Err"
    );
    // None of the calls above may have left an uncaptured GPU error behind.
    g.check().expect("no GPU error escaped");
}

// ---------------------------------------------------------------- grids past 65535 workgroups

/// More columns than 65535 workgroups of 256 cover: `grid_1d` folds the grid into y, and the
/// kernel must then rebuild the column from `num_workgroups` as the element-wise kernels do.
/// (Refusing the shape with an `Err` would also be a correct answer.)
#[test]
fn column_sums_cover_a_folded_grid() {
    let _serial = serial();
    let f = fixture();
    // One row keeps the input (67 MB) under lavapipe's 128 MiB binding limit.
    let (rows, cols) = (1, 65_535 * 256 + 1000);
    let x = random(rows * cols, 5);
    let xb = upload(&f.gpu, &x);
    let ob = upload(&f.gpu, &vec![SENTINEL; cols]);
    let Ok(d) = f.kernels.reduce.column_sums(&f.gpu, rows, cols, (&xb, 0), (&ob, 0)) else { return };
    submit(&f.gpu, &[&d]);
    let got = read(&f.gpu, &ob, cols);
    // One row: its sum is the row itself, exactly (0 + x rounds to x).
    assert_close(&format!("column sums {rows}x{cols}"), &got, &x, |_| 0.0);
}

/// A batch of more than 4 x 65535 rows needs more workgroups in y than a dispatch allows:
/// `Gather::record` must either refuse it or gather every row (not record a dispatch that
/// fails validation on submit).
#[test]
fn gather_of_more_rows_than_one_dispatch_covers() {
    let _serial = serial();
    let f = fixture();
    let rows = 65_535 * 4 + 8;
    let lut = pixel_lut();
    // Three one-pixel images; row r is image r % 3.
    let (pix, labels) = (upload_u32(&f.gpu, &[10, 20, 30]), upload_u32(&f.gpu, &[3, 4, 5]));
    let perm = upload_u32(&f.gpu, &(0..rows as u32).map(|i| i % 3).collect::<Vec<_>>());
    let (lutb, step) = (upload(&f.gpu, &lut), uniform_buffer(&f.gpu, 16));
    f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep::default()));
    let (xb, yb) = (zeros(&f.gpu, rows), upload_u32(&f.gpu, &vec![u32::MAX; rows]));
    let src = GatherSources {
        pixels: &pix,
        words: 1,
        features: 1,
        labels: &labels,
        perm: &perm,
        lut: &lutb,
        step: &step,
    };
    let Ok(d) = f.kernels.gather.record(&f.gpu, rows, &src, (&xb, 0), &yb) else { return };
    submit(&f.gpu, &[&d]);
    let y = f.gpu.read::<u32>(&yb, 0, rows).expect("the recorded gather must run");
    let x = read(&f.gpu, &xb, rows);
    for r in 0..rows {
        assert_eq!(
            (x[r].to_bits(), y[r]),
            (lut[[10, 20, 30][r % 3]].to_bits(), 3 + (r % 3) as u32),
            "row {r} of {rows}"
        );
    }
}
