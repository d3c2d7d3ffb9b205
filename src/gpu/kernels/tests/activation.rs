//! Activation kernels (forward and backward) against the CPU reference (`crate::cpu`), on
//! lavapipe, at awkward sizes and offsets, and at large pre-activations where they must stay
//! finite and saturate.
//!
//! Tolerances: see the module header of `gpu/kernels/tests/common.rs` (u, RTOL, EPS_ONE, FLUSH and
//! the bound used for each kind of kernel).

use super::common::*;
use super::*;
use crate::cpu;
use crate::gpu::kernels::submit;
use crate::spec::Activation;

const SIZES: [usize; 9] = [1, 3, 7, 63, 65, 128, 784, 1000, 50_890];

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
