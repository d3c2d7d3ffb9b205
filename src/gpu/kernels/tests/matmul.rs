//! Every matmul variant against an f64 reference, on awkward shapes and all three forms.
//!
//! Tolerance: the computed dot product of length k satisfies |fl(c) - c| <= gamma_k * sum|a||b|
//! with gamma_k = k u / (1 - k u), u = 2^-24 (Higham, Accuracy and Stability, 3.1). We allow
//! twice gamma_k (fused or unfused multiply-adds, any summation order) plus the rounding of
//! the stored result: `|gpu - exact| <= (2 k + 1) u sum_p |a_ip b_pj|`.

use super::*;
use crate::gpu::kernels::{submit, MatmulCall, Variant};
use crate::ops::MatmulForm;

fn reference(form: MatmulForm, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let [ars, acs, brs, bcs] = form.strides(m, n, k);
    let mut c = vec![0.0; m * n];
    let mut mag = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let x = a[i * ars + p * acs] as f64 * b[p * brs + j * bcs] as f64;
                c[i * n + j] += x;
                mag[i * n + j] += x.abs();
            }
        }
    }
    (c, mag)
}

fn check(variant: Variant, form: MatmulForm, m: usize, n: usize, k: usize) -> bool {
    let f = fixture();
    let a = random(m * k, (m * 31 + k) as u64);
    let b = random(k * n, (n * 17 + k) as u64);
    let (want, mag) = reference(form, m, n, k, &a, &b);
    let (ab, bb, cb) = (upload(&f.gpu, &a), upload(&f.gpu, &b), zeros(&f.gpu, m * n));
    let call = MatmulCall::plain(form, m, n, k, &ab, &bb, &cb);
    if !f.kernels.matmul.supports(variant, &call) {
        return false;
    }
    let d = f.kernels.matmul.record(&f.gpu, variant, &call).expect("record");
    submit(&f.gpu, &[&d]);
    let got = read(&f.gpu, &cb, m * n);
    let u = f64::powi(2.0, -24);
    for idx in 0..m * n {
        let tol = (2 * k + 1) as f64 * u * mag[idx] + f64::MIN_POSITIVE;
        let err = (got[idx] as f64 - want[idx]).abs();
        assert!(
            err <= tol,
            "{} {} m={m} n={n} k={k}: C[{},{}] = {} but exact {} (err {err:e} > tol {tol:e})",
            variant.name(),
            form.name(),
            idx / n,
            idx % n,
            got[idx],
            want[idx]
        );
    }
    true
}

const SIZES: [usize; 8] = [1, 3, 7, 63, 65, 128, 784, 1000];

/// Every dimension takes every awkward size at least once, with the other two small enough
/// that the f64 reference stays quick.
fn shapes() -> Vec<(usize, usize, usize)> {
    let mut s = Vec::new();
    for &x in &SIZES {
        s.push((x, 7, 65));
        s.push((65, x, 7));
        s.push((7, 63, x));
    }
    s.extend([
        (128, 64, 784),
        (784, 64, 128),
        (128, 10, 64),
        (128, 64, 10),
        (64, 10, 128),
        (4, 8, 4),
        (1, 1, 1),
        // For the texture variants (n, and k or m, multiples of 4): blocks of C cut by m and
        // n (the subgroup ones take 16 rows by 32 columns a workgroup), and AtB's k past the
        // last whole 8 (all of it when k = 3).
        (7, 36, 20),
        (28, 36, 8),
        (20, 44, 12),
        (36, 12, 3),
        (68, 100, 36),
    ]);
    s
}

#[test]
fn every_variant_matches_the_f64_reference_on_awkward_shapes() {
    for variant in Variant::ALL {
        let mut ran = 0;
        for form in MatmulForm::ALL {
            for &(m, n, k) in &shapes() {
                if check(variant, form, m, n, k) {
                    ran += 1;
                }
            }
        }
        // The subgroup variants need a device with subgroups (lavapipe has them: see
        // `lavapipe_runs_the_subgroup_variants`).
        let runs_here = !variant.needs_subgroups() || fixture().gpu.has_subgroups_of(8);
        assert!(ran > 0 || !runs_here, "variant {} supported no test shape", variant.name());
    }
}

#[test]
fn zero_and_mismatched_shapes_are_errors() {
    let f = fixture();
    let a = zeros(&f.gpu, 16);
    let call = MatmulCall::plain(MatmulForm::AB, 0, 4, 4, &a, &a, &a);
    assert!(f.kernels.matmul.record(&f.gpu, Variant::Naive, &call).is_err(), "m = 0 must be rejected");
    let call = MatmulCall::plain(MatmulForm::AB, 8, 8, 8, &a, &a, &a);
    let err = f.kernels.matmul.record(&f.gpu, Variant::Naive, &call).expect_err("64 floats do not fit 16");
    assert!(err.to_string().contains("needs 64 floats"), "message should name the size: {err}");
}

/// Every variant adds each output's products one k at a time, in order: they must agree
/// with the naive kernel exactly (float equality, so +0 and -0 count as equal), or the
/// autotuner's choice would change results and the same seed would not give the same weights.
#[test]
fn every_variant_gives_the_same_bits_as_naive() {
    let f = fixture();
    for form in MatmulForm::ALL {
        for &(m, n, k) in &[
            (128, 64, 784),
            (784, 64, 128),
            (128, 64, 12),
            (65, 63, 7),
            (128, 10, 64),
            (68, 100, 36),
            (20, 44, 12),
            (20, 44, 5),
        ] {
            let (a, b) = (random(m * k, 3), random(k * n, 4));
            let (ab, bb) = (upload(&f.gpu, &a), upload(&f.gpu, &b));
            let run = |v: Variant| -> Option<Vec<f32>> {
                let cb = zeros(&f.gpu, m * n);
                let call = MatmulCall::plain(form, m, n, k, &ab, &bb, &cb);
                if !f.kernels.matmul.supports(v, &call) {
                    return None;
                }
                let d = f.kernels.matmul.record(&f.gpu, v, &call).expect("record");
                submit(&f.gpu, &[&d]);
                Some(read(&f.gpu, &cb, m * n))
            };
            let naive = run(Variant::Naive).expect("naive supports everything");
            for v in Variant::ALL {
                if let Some(got) = run(v) {
                    let diff = got.iter().zip(&naive).position(|(x, y)| x != y);
                    assert!(
                        diff.is_none(),
                        "{} {} {m}x{n}x{k}: element {:?} differs from naive ({} vs {})",
                        v.name(),
                        form.name(),
                        diff,
                        diff.map_or(0.0, |i| got[i]),
                        diff.map_or(0.0, |i| naive[i])
                    );
                }
            }
        }
    }
}

/// Mesa's lavapipe on 256-bit vectors (CI's, and this machine's: Mesa 22.3) has subgroups of
/// 8: the device opens with them and every subgroup variant can run there (so the tests above
/// cannot pass by skipping them on CI). On 128-bit vectors its subgroups hold 4, and these
/// variants do not run. wgpu offers subgroups only where the driver has Vulkan 1.3 (or
/// `VK_EXT_subgroup_size_control`) and the basic to quad subgroup operations in compute and
/// fragment shaders: an older Mesa's lavapipe fails here, and the message says why.
#[test]
fn lavapipe_runs_the_subgroup_variants() {
    let f = fixture();
    let r = &f.gpu.report;
    if !(r.backend == "vulkan" && r.name.starts_with("llvmpipe") && r.name.contains("256 bits")) {
        return;
    }
    assert!(
        f.gpu.has_subgroups_of(8),
        "{}: no subgroups of 8 (wgpu's SUBGROUP feature needs Vulkan 1.3 or VK_EXT_subgroup_size_control \
         and the basic to quad subgroup operations; Mesa 22.3's lavapipe has them)",
        r.label()
    );
    let (a, b, c) = (zeros(&f.gpu, 64 * 64), zeros(&f.gpu, 64 * 64), zeros(&f.gpu, 64 * 64));
    for form in MatmulForm::ALL {
        let call = MatmulCall::plain(form, 64, 64, 64, &a, &b, &c);
        let sg: Vec<Variant> = Variant::ALL
            .into_iter()
            .filter(|v| v.needs_subgroups() && f.kernels.matmul.supports(*v, &call))
            .collect();
        assert_eq!(sg.len(), 1, "{}: one subgroup variant per form, got {sg:?}", form.name());
    }
}
