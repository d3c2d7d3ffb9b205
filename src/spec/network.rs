//! The MLP's description and its flat parameter layout.
//!
//! Parameters, gradients and optimizer moments each live in one flat `f32` buffer, so that one
//! dispatch (or one loop) updates every parameter. Layer `l` owns `W_l: [inputs, outputs]`
//! row-major followed by `b_l: [outputs]`; every tensor starts at a multiple of
//! [`TENSOR_ALIGN`] floats so that GPU kernels may load it as `vec4<f32>`.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every tensor offset in a flat buffer is a multiple of this many floats (16 bytes).
pub const TENSOR_ALIGN: usize = 4;

/// A layer's non-linearity. The last layer of a classifier uses [`Activation::Identity`]:
/// its outputs are logits fed to the fused softmax cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `x`: no non-linearity (logits).
    Identity,
    /// `max(x, 0)`; its gradient at exactly 0 is taken as 0, like PyTorch.
    Relu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// GELU, tanh approximation: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    Gelu,
}

impl Activation {
    /// The code the WGSL kernels use for this activation (see `shaders/activation.wgsl`).
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
            Activation::Tanh => 3,
            Activation::Gelu => 4,
        }
    }

    /// All activations, in code order.
    pub const ALL: [Activation; 5] =
        [Activation::Identity, Activation::Relu, Activation::Sigmoid, Activation::Tanh, Activation::Gelu];
}

/// How initial weights are drawn (biases start at zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Uniform in `±sqrt(6 / fan_in)`: the usual choice before ReLU.
    He,
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))`: Keras's default `glorot_uniform`.
    Glorot,
}

/// A sequential MLP: `sizes[0]` inputs, then one dense layer per following size.
/// `activations[l]` follows layer `l`; the last one is normally `Identity` (logits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// Widths from input to output: at least two, none zero or over 2^24. The last is the
    /// number of classes.
    pub sizes: Vec<usize>,
    /// One per dense layer, so `sizes.len() - 1` of them.
    pub activations: Vec<Activation>,
}

impl Default for MlpSpec {
    /// The classic MNIST model: 784-64 ReLU-10 (softmax applied by the loss).
    fn default() -> Self {
        MlpSpec::classifier(&[784, 64, 10], Activation::Relu)
    }
}

impl MlpSpec {
    /// `sizes` with `hidden` after every layer but the last, which outputs logits.
    pub fn classifier(sizes: &[usize], hidden: Activation) -> Self {
        let layers = sizes.len().saturating_sub(1);
        let activations =
            (0..layers).map(|l| if l + 1 == layers { Activation::Identity } else { hidden }).collect();
        MlpSpec { sizes: sizes.to_vec(), activations }
    }

    /// Checks that the spec describes a trainable model.
    pub fn validate(&self) -> Result<()> {
        if self.sizes.len() < 2 {
            return Err(Error::Shape(format!(
                "an MLP needs at least an input and an output size, got {:?}",
                self.sizes
            )));
        }
        if self.activations.len() != self.sizes.len() - 1 {
            return Err(Error::Shape(format!(
                "{} layers need {} activations, got {}",
                self.sizes.len() - 1,
                self.sizes.len() - 1,
                self.activations.len()
            )));
        }
        if let Some(i) = self.sizes.iter().position(|&s| s == 0) {
            return Err(Error::Shape(format!("layer size {i} is zero in {:?}", self.sizes)));
        }
        if self.sizes.iter().any(|&s| s > (1 << 24)) {
            return Err(Error::Shape(format!("a layer size over 2^24 in {:?}", self.sizes)));
        }
        Ok(())
    }

    /// Number of dense layers.
    pub fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// Output classes (logits).
    pub fn outputs(&self) -> usize {
        *self.sizes.last().unwrap_or(&0)
    }

    /// Where each tensor lives in the flat parameter buffer.
    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(&self.sizes)
    }
}

/// Offsets (in floats) of one layer's tensors in the flat buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSlots {
    /// Fan-in: the previous layer's width.
    pub inputs: usize,
    /// Fan-out: this layer's width.
    pub outputs: usize,
    /// `W: [inputs, outputs]` row-major.
    pub weight: usize,
    /// `b: [outputs]`.
    pub bias: usize,
}

/// The flat layout shared by parameters, gradients and optimizer moments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamLayout {
    /// One entry per dense layer, input side first.
    pub layers: Vec<LayerSlots>,
    /// Total floats, padding included (padding is always zero and stays zero).
    pub len: usize,
}

fn align_up(x: usize) -> usize {
    x.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}

impl ParamLayout {
    fn new(sizes: &[usize]) -> Self {
        let mut at = 0;
        let mut layers = Vec::new();
        for w in sizes.windows(2) {
            let weight = at;
            at = align_up(at + w[0] * w[1]);
            let bias = at;
            at = align_up(at + w[1]);
            layers.push(LayerSlots { inputs: w[0], outputs: w[1], weight, bias });
        }
        ParamLayout { layers, len: at }
    }

    /// Number of real parameters (padding excluded).
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(|l| l.inputs * l.outputs + l.outputs).sum()
    }

    /// Fresh parameters: weights from `init` with a seeded generator, biases zero.
    pub fn init(&self, init: Init, seed: u64) -> Vec<f32> {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
        let mut params = vec![0.0f32; self.len];
        for l in &self.layers {
            let limit = match init {
                Init::He => (6.0 / l.inputs as f64).sqrt(),
                Init::Glorot => (6.0 / (l.inputs + l.outputs) as f64).sqrt(),
            } as f32;
            for p in &mut params[l.weight..l.weight + l.inputs * l.outputs] {
                *p = rng.random_range(-limit..limit);
            }
        }
        params
    }
}
