//! Elementwise activations and their backward rules, in `f32`, matching
//! `shaders/activation.wgsl` formula for formula.
//!
//! The backward takes the *pre-activation* `z` (not the output) because that is what the
//! forward pass keeps: `dz = dy * act'(z)`. Sigmoid, tanh and GELU recompute their forward
//! value from `z` inside the backward rather than storing it, as the kernels do.

use crate::error::Result;
use crate::spec::Activation;

use super::check_len;

/// `sqrt(2 / pi)` = 0.7978845608... rounded to f32 (0.79788458), the constant of GELU's tanh
/// approximation; the kernel spells it with the same digits, so both round to the same f32.
const GELU_C: f32 = 0.797_884_6;
/// The cubic coefficient of GELU's tanh approximation.
const GELU_K: f32 = 0.044_715;

/// `act(x)` for one value.
#[inline]
fn forward_one(x: f32, act: Activation) -> f32 {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => 0.5 * x * (1.0 + (GELU_C * (x + GELU_K * x * x * x)).tanh()),
    }
}

/// `act'(x)` for one value.
#[inline]
fn derivative_one(x: f32, act: Activation) -> f32 {
    match act {
        Activation::Identity => 1.0,
        // The subgradient at exactly 0 is taken as 0, like PyTorch and the kernel.
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }
        Activation::Tanh => {
            let t = x.tanh();
            1.0 - t * t
        }
        Activation::Gelu => {
            let t = (GELU_C * (x + GELU_K * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * x * x)
        }
    }
}

/// `a = act(z)` elementwise, in a new buffer. Any length, including zero, works.
pub fn activation_forward(z: &[f32], act: Activation) -> Vec<f32> {
    z.iter().map(|&x| forward_one(x, act)).collect()
}

/// [`activation_forward`] into `a`, which must be as long as `z`.
pub fn activation_forward_into(z: &[f32], act: Activation, a: &mut [f32]) -> Result<()> {
    check_len("activation output", a.len(), z.len())?;
    forward_span(z, act, a);
    Ok(())
}

/// `a = act(z)` over the common length of `z` and `a`, with the activation chosen once
/// outside the loop so that each loop is branch-free and vectorizes (the product's epilogue
/// runs it on every block of a layer's output).
pub(super) fn forward_span(z: &[f32], act: Activation, a: &mut [f32]) {
    #[inline(always)]
    fn each(z: &[f32], a: &mut [f32], f: impl Fn(f32) -> f32) {
        for (a, &x) in a.iter_mut().zip(z) {
            *a = f(x);
        }
    }
    match act {
        Activation::Identity => each(z, a, |x| forward_one(x, Activation::Identity)),
        Activation::Relu => each(z, a, |x| forward_one(x, Activation::Relu)),
        Activation::Sigmoid => each(z, a, |x| forward_one(x, Activation::Sigmoid)),
        Activation::Tanh => each(z, a, |x| forward_one(x, Activation::Tanh)),
        Activation::Gelu => each(z, a, |x| forward_one(x, Activation::Gelu)),
    }
}

/// `dz *= act'(z)` over the common length of `dz` and `z`: [`activation_backward_into`]'s
/// formula with its upstream gradient read from `dz` itself (the input-gradient product's
/// epilogue), the activation chosen once outside the loop.
pub(super) fn scale_by_derivative(dz: &mut [f32], z: &[f32], act: Activation) {
    #[inline(always)]
    fn each(dz: &mut [f32], z: &[f32], f: impl Fn(f32) -> f32) {
        for (dz, &x) in dz.iter_mut().zip(z) {
            *dz *= f(x);
        }
    }
    match act {
        Activation::Identity => each(dz, z, |x| derivative_one(x, Activation::Identity)),
        Activation::Relu => each(dz, z, |x| derivative_one(x, Activation::Relu)),
        Activation::Sigmoid => each(dz, z, |x| derivative_one(x, Activation::Sigmoid)),
        Activation::Tanh => each(dz, z, |x| derivative_one(x, Activation::Tanh)),
        Activation::Gelu => each(dz, z, |x| derivative_one(x, Activation::Gelu)),
    }
}

/// `dz = dy * act'(z)` elementwise, in a new buffer; `dy` and `z` must be as long.
pub fn activation_backward(dy: &[f32], z: &[f32], act: Activation) -> Result<Vec<f32>> {
    let mut dz = vec![0.0; z.len()];
    activation_backward_into(dy, z, act, &mut dz)?;
    Ok(dz)
}

/// [`activation_backward`] into `dz`.
pub fn activation_backward_into(dy: &[f32], z: &[f32], act: Activation, dz: &mut [f32]) -> Result<()> {
    check_len("activation upstream gradient dy", dy.len(), z.len())?;
    check_len("activation gradient dz", dz.len(), z.len())?;
    for ((dz, &dy), &x) in dz.iter_mut().zip(dy).zip(z) {
        *dz = dy * derivative_one(x, act);
    }
    Ok(())
}
