//! The dropout kernels against their CPU twin (`cpu/layers/dropout.rs`), bit for bit: the
//! keep decisions (the WGSL Philox-4x32-10 against the Rust one, whose own bits are checked
//! against Random123's known answers in `spec/dropout.rs`), the forward, the backward with
//! the layer below's derivative fused, and evaluation's copy, on awkward shapes and offsets,
//! with the step and row base read from the per-launch uniform as in training.

use super::common::*;
use super::*;
use crate::cpu::{dropout_forward, dropout_input_grad, LayerInput};
use crate::gpu::kernels::{submit, DropoutCall, GatherStep};
use crate::spec::{Activation, DropoutMask};

/// A 16-byte per-launch uniform holding `t` and `row_base`.
fn step_uniform(f: &Fixture, t: u64, row_base: usize) -> wgpu::Buffer {
    let step = uniform_buffer(&f.gpu, 16);
    f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep::new(7, t, row_base)));
    step
}

/// The forward on the GPU over `x: [rows, units]` (read at offset 5, written at offset 2,
/// with the floats around the output checked untouched).
fn gpu_forward(mask: &DropoutMask, row_base: usize, x: &[f32], units: usize, train: bool) -> Vec<f32> {
    let f = fixture();
    let (n, rows) = (x.len(), x.len() / units);
    let xb = upload(&f.gpu, &padded(x, 5));
    let out = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let step = step_uniform(f, u64::from(mask.step), row_base);
    let call = DropoutCall { rows, units, mask: *mask, step: &step, x: (&xb, 5), out: (&out, 2) };
    let d = f.kernels.dropout.forward(&f.gpu, &call, train).expect("record forward");
    submit(&f.gpu, &[&d]);
    let (y, pad) = split_padded(&read(&f.gpu, &out, n + 4), 2);
    assert_untouched("dropout forward", &pad);
    y
}

/// The backward on the GPU: `dx = (keep ? dy * scale : 0) * act'(z)`.
fn gpu_backward(
    mask: &DropoutMask,
    row_base: usize,
    dy: &[f32],
    z: &[f32],
    units: usize,
    act: Activation,
) -> Vec<f32> {
    let f = fixture();
    let (n, rows) = (dy.len(), dy.len() / units);
    let dyb = upload(&f.gpu, &padded(dy, 3));
    let zb = upload(&f.gpu, &padded(z, 1));
    let out = upload(&f.gpu, &padded(&vec![0.0; n], 2));
    let step = step_uniform(f, u64::from(mask.step), row_base);
    let call = DropoutCall { rows, units, mask: *mask, step: &step, x: (&dyb, 3), out: (&out, 2) };
    let d = f.kernels.dropout.backward(&f.gpu, &call, (&zb, 1), act).expect("record backward");
    submit(&f.gpu, &[&d]);
    let (dx, pad) = split_padded(&read(&f.gpu, &out, n + 4), 2);
    assert_untouched("dropout backward", &pad);
    dx
}

/// Fails at the first element whose bits differ, naming it.
fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{what}: [{i}] = {:e} on the GPU, {:e} on the CPU", got[i], want[i]);
    }
}

/// Keep decisions over 1757 x 37 counters for each of several keys, steps (one past 2^31),
/// layers, row bases and thresholds: the forward of ones with a scale of 1 writes each
/// decision as 1 or 0, to be equal to the CPU's word >= threshold.
#[test]
fn the_kernel_draws_the_cpu_masks_over_many_counters() {
    let _serial = serial();
    let (rows, units) = (1757usize, 37usize);
    let ones = vec![1.0f32; rows * units];
    let cases: [(u64, u64, usize, usize); 4] = [
        (0, 1, 0, 0),
        (0x0123_4567_89ab_cdef, 2, 3, 0),
        (42, (1 << 31) + 5, 1, 4_000_000),
        (u64::MAX, 99, 7, 513),
    ];
    let thresholds = [1u32, 0x5555_5555, 1 << 31, 0x9E37_79B9, 0xF000_0000, u32::MAX - 255];
    for (seed, t, layer, row_base) in cases {
        for threshold in thresholds {
            let mask = DropoutMask { threshold, scale: 1.0, ..DropoutMask::new(0.5, seed, layer, t) };
            let got = gpu_forward(&mask, row_base, &ones, units, true);
            for (i, &g) in got.iter().enumerate() {
                let (r, u) = (i / units, i % units);
                let want = mask.keeps((row_base + r) as u32, u as u32);
                assert_eq!(
                    g,
                    if want { 1.0 } else { 0.0 },
                    "seed {seed:#x} t {t} layer {layer} row base {row_base} threshold {threshold:#x}: \
                     row {r} unit {u}"
                );
            }
        }
    }
}

/// Forward, backward and evaluation on awkward shapes (1757 x 37 among them), rates 0.3 and
/// 0, against the CPU twin: bits for the forward, the copy and the backward over the
/// identity and ReLU (whose derivatives are exact); over the curved activations the
/// derivative's own tolerance (`common.rs`, as for the activation kernels), since the
/// dropout part, `keep ? dy * scale : 0`, is one f32 multiply on both sides.
#[test]
fn forward_backward_and_evaluation_match_the_cpu_twin() {
    let _serial = serial();
    let shapes = [(1757usize, 37usize), (1, 1), (3, 5), (64, 4), (5, 130)];
    for (s, &(rows, units)) in shapes.iter().enumerate() {
        for rate in [0.3f32, 0.0] {
            let mask = DropoutMask::new(rate, 9 + s as u64, 2, 3 + s as u64);
            let row_base = 17 * s;
            let n = rows * units;
            let x = random(n, 10 + s as u64);
            let name = format!("[{rows}, {units}] rate {rate}");

            let mut want = vec![0.0f32; n];
            dropout_forward(Some((&mask, row_base)), LayerInput::Whole(&x), &mut want, rows, units).unwrap();
            assert_bits(&format!("{name}: forward"), &gpu_forward(&mask, row_base, &x, units, true), &want);
            assert_bits(&format!("{name}: evaluation"), &gpu_forward(&mask, row_base, &x, units, false), &x);

            let dy = random(n, 20 + s as u64);
            let z: Vec<f32> = random(n, 30 + s as u64).iter().map(|v| v * 6.0).collect();
            for act in Activation::ALL {
                let mut want = vec![0.0f32; n];
                dropout_input_grad(&mask, row_base, &dy, (&mut want, &z, act), rows, units).unwrap();
                let got = gpu_backward(&mask, row_base, &dy, &z, units, act);
                if matches!(act, Activation::Identity | Activation::Relu) {
                    assert_bits(&format!("{name} {act:?}: backward"), &got, &want);
                } else {
                    let g = |i: usize| if want[i] == 0.0 { 0.0 } else { dy[i] * mask.scale };
                    assert_close(&format!("{name} {act:?}: backward"), &got, &want, |i| {
                        backward_tol(act, g(i), z[i], want[i])
                    });
                }
            }
        }
    }
}
