//! Matmul epilogues against the CPU reference (`crate::cpu`), on lavapipe: the forward
//! layer's bias, activation and stored pre-activation, the ABt backward through the activation,
//! and the shape errors of the epilogue options.
//!
//! Tolerances: see the module header of `gpu/kernels/tests/common.rs` (u, RTOL, EPS_ONE, FLUSH and
//! the bound used for each kind of kernel).

use super::common::*;
use super::*;
use crate::cpu;
use crate::gpu::kernels::{submit, MatmulCall, Variant};
use crate::ops::MatmulForm;
use crate::spec::Activation;

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

/// Each backend's product is within `(2k + 1) u mag` of exact (`matmul.rs`), plus `u mag`
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
        // C at float 4 and z at float 3 or 8 of sentinel-filled buffers: offsets honoured,
        // nothing outside the outputs written. (An unaligned z rules out the texture
        // variants, which store vec4s; the aligned one lets them run.)
        let (c_off, total) = (4, m * n + 12);
        for (variant, z_off) in Variant::ALL.into_iter().flat_map(|v| [(v, 3), (v, 8)]) {
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
                if !f.kernels.matmul.supports(variant, &call) {
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
    // The subgroup variants run where the device has subgroups of 8 (lavapipe).
    let subgroups = f.gpu.has_subgroups_of(8);
    for v in Variant::ALL.into_iter().filter(|v| subgroups || !v.needs_subgroups()) {
        if v.only_form().is_none_or(|f| f == MatmulForm::AB) {
            assert!(ran.contains(v.name()), "{} ran on no forward shape", v.name());
        }
    }
}

/// Backward through a layer: `dX = (dY W^T) * act'(z)` with the saved pre-activation, every
/// variant that supports the shape, against `cpu::matmul` then `activation_backward`. Training
/// only uses this epilogue with ABt; AB and AtB run it too (with an aligned z, so the texture
/// variants' vec4 epilogue is covered).
#[test]
fn matmul_epilogue_applies_the_activation_backward() {
    let _serial = serial();
    let f = fixture();
    let shapes = [(1, 1, 1), (7, 65, 63), (65, 7, 8), (64, 128, 12), (128, 784, 64), (128, 64, 12)];
    let mut ran = std::collections::BTreeSet::new();
    for form in [MatmulForm::ABt, MatmulForm::AB, MatmulForm::AtB] {
        for (s, &(m, n, k)) in shapes.iter().enumerate() {
            // z at float 4 (aligned, as training's are: each layer's z starts its own buffer),
            // and for ABt on every other shape at float 1 too, which only the buffer
            // variants take.
            let z_at = if form == MatmulForm::ABt && s % 2 == 0 { 1 } else { 4 };
            let dy = random(m * k, 600 + s as u64);
            let w = random(n * k, 700 + s as u64);
            let z: Vec<f32> = random(m * n, 800 + s as u64).iter().map(|v| v * 4.0).collect();
            let want_g = cpu::matmul(form, m, n, k, &dy, &w).expect("cpu matmul");
            let mag = magnitudes(form, m, n, k, &dy, &w, None);
            let (ab, bb, zb) = (upload(&f.gpu, &dy), upload(&f.gpu, &w), upload(&f.gpu, &padded(&z, z_at)));
            let total = m * n + 8;
            for act in Activation::ALL {
                let want = cpu::activation_backward(&want_g, &z, act).expect("cpu backward");
                let slope = cpu::activation_backward(&vec![1.0; m * n], &z, act).expect("cpu act'");
                for variant in Variant::ALL {
                    let cb = upload(&f.gpu, &vec![SENTINEL; total]);
                    let call = MatmulCall {
                        form,
                        m,
                        n,
                        k,
                        a: (&ab, 0),
                        b: (&bb, 0),
                        c: (&cb, 4),
                        bias: None,
                        act,
                        z: Some((&zb, z_at)),
                        act_backward: true,
                    };
                    if !f.kernels.matmul.supports(variant, &call) {
                        continue;
                    }
                    ran.insert((form.name(), variant.name()));
                    let d = f.kernels.matmul.record(&f.gpu, variant, &call).expect("record");
                    submit(&f.gpu, &[&d]);
                    let name = format!("{} {} {act:?} m={m} n={n} k={k}", variant.name(), form.name());
                    let got = read_region(&name, &cb, 4, m * n, total);
                    assert_close(&name, &got, &want, |i| {
                        backward_tol(act, want_g[i], z[i], want[i])
                            + (slope[i] as f64).abs() * product_tol(k, mag[i])
                    });
                    // The saved pre-activation is only read.
                    let (z_after, z_pad) = split_padded(&read(&f.gpu, &zb, m * n + 2 * z_at), z_at);
                    assert_eq!(z_after, z, "{name}: the saved pre-activation was modified");
                    assert_untouched(&format!("{name} z"), &z_pad);
                }
            }
        }
    }
    let subgroups = f.gpu.has_subgroups_of(8);
    for v in Variant::ALL.into_iter().filter(|v| subgroups || !v.needs_subgroups()) {
        for form in [MatmulForm::ABt, MatmulForm::AB, MatmulForm::AtB] {
            if v.only_form().is_none_or(|f| f == form) {
                assert!(
                    ran.contains(&(form.name(), v.name())),
                    "{} ran on no {} shape",
                    v.name(),
                    form.name()
                );
            }
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
