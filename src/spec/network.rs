//! The network: a list of layers, and the flat layout of their parameters.
//!
//! Parameters, gradients and optimizer moments each live in one flat `f32` buffer, so that one
//! dispatch (or one loop) updates every parameter. The `p`-th dense layer owns
//! `W_p: [inputs, outputs]` row-major followed by `b_p: [outputs]`; every tensor starts at a
//! multiple of [`TENSOR_ALIGN`] floats so that GPU kernels may load it as `vec4<f32>`. Layers
//! without parameters ([`Layer::Dropout`]) take no room: `p` counts the dense layers only, so
//! the layout (and the `layers.{p}.weight` tensors of a saved model) of a network with dropout
//! is that of the same network without it.

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

/// One layer of a [`Network`], applied to the output of the layer before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Layer {
    /// Fully connected: `h = act(x W + b)` with `W: [inputs, units]` and `b: [units]`.
    Dense {
        /// Outputs of the layer: at least 1, at most 2^24.
        units: usize,
        /// The non-linearity applied to `x W + b`.
        activation: Activation,
    },
    /// Inverted dropout (Keras's and PyTorch's): in training `y = x * mask / (1 - rate)`
    /// with `mask` ~ Bernoulli(`1 - rate`) per element, drawn by a counter-based generator
    /// (see [`DropoutMask`](crate::DropoutMask)) keyed on `seed`; in evaluation and
    /// prediction `y = x`. No parameters; its output is as wide as its input.
    Dropout {
        /// The probability of dropping an element: `0 <= rate < 1`.
        rate: f32,
        /// The generator's key: the same seed draws the same masks (and so trains the same
        /// weights) on every executor.
        #[serde(default)]
        seed: u64,
    },
}

impl Layer {
    /// A dense layer of `units` outputs followed by `activation`.
    pub fn dense(units: usize, activation: Activation) -> Self {
        Layer::Dense { units, activation }
    }

    /// A dropout layer dropping each element with probability `rate`, with seed 0.
    pub fn dropout(rate: f32) -> Self {
        Layer::Dropout { rate, seed: 0 }
    }

    /// A dropout layer dropping each element with probability `rate`, its masks drawn with
    /// `seed`.
    pub fn dropout_seeded(rate: f32, seed: u64) -> Self {
        Layer::Dropout { rate, seed }
    }

    /// The width of this layer's output, given the width of its input.
    pub fn outputs(&self, inputs: usize) -> usize {
        match *self {
            Layer::Dense { units, .. } => units,
            Layer::Dropout { .. } => inputs,
        }
    }
}

/// A sequential network: `inputs` features per row, then its layers in order. The last
/// layer's outputs are what the task's loss reads (logits for the softmax cross-entropy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Features per input row: at least 1, at most 2^24.
    pub inputs: usize,
    /// The layers from input to output; at least one.
    pub layers: Vec<Layer>,
}

impl Default for Network {
    /// The classic MNIST model: 784-64 ReLU-10 (softmax applied by the loss).
    fn default() -> Self {
        Network::classifier(&[784, 64, 10], Activation::Relu)
    }
}

impl Network {
    /// A network of `inputs` features and no layers yet; add them with [`Network::dense`].
    pub fn new(inputs: usize) -> Self {
        Network { inputs, layers: Vec::new() }
    }

    /// `self` with a dense layer of `units` outputs and `activation` appended.
    pub fn dense(mut self, units: usize, activation: Activation) -> Self {
        self.layers.push(Layer::dense(units, activation));
        self
    }

    /// `self` with a dropout layer of `rate` (seed 0) appended.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.layers.push(Layer::dropout(rate));
        self
    }

    /// Dense layers of widths `sizes[1..]` on `sizes[0]` inputs, `hidden` after every layer
    /// but the last, which outputs logits ([`Activation::Identity`]).
    pub fn classifier(sizes: &[usize], hidden: Activation) -> Self {
        let count = sizes.len().saturating_sub(1);
        let layers = (1..sizes.len())
            .map(|l| Layer::dense(sizes[l], if l == count { Activation::Identity } else { hidden }))
            .collect();
        Network { inputs: sizes.first().copied().unwrap_or(0), layers }
    }

    /// Checks that the network describes a trainable model.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::Shape(format!(
                "a network needs at least one layer after its {} inputs",
                self.inputs
            )));
        }
        let widths = self.widths();
        if let Some(i) = widths.iter().position(|&s| s == 0) {
            return Err(Error::Shape(format!(
                "width {i} is zero in {widths:?} (inputs, then each layer's outputs)"
            )));
        }
        if widths.iter().any(|&s| s > (1 << 24)) {
            return Err(Error::Shape(format!("a width over 2^24 in {widths:?}")));
        }
        self.validate_dropout()
    }

    /// Every dropout rate in `[0, 1)`, and no dropout last: the last layer's output is what
    /// the loss reads (logits), and dropping logits is not what a network means.
    fn validate_dropout(&self) -> Result<()> {
        for (l, layer) in self.layers.iter().enumerate() {
            if let Layer::Dropout { rate, .. } = *layer {
                if !(0.0..1.0).contains(&rate) {
                    return Err(Error::Config(format!(
                        "layer {l} (dropout): rate {rate} is outside [0, 1); use a rate such as \
                         0.2 (the fraction of elements dropped in training)"
                    )));
                }
                if l + 1 == self.layers.len() {
                    return Err(Error::Config(format!(
                        "layer {l} (dropout) is the last layer: its output would be the logits \
                         the loss reads; put the dropout before the last dense layer"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Widths from input to output: `inputs`, then each layer's outputs.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths = vec![self.inputs];
        for layer in &self.layers {
            let last = widths[widths.len() - 1];
            widths.push(layer.outputs(last));
        }
        widths
    }

    /// The activation of each layer, in order ([`Activation::Identity`] for a dropout layer,
    /// which applies none).
    pub fn activations(&self) -> Vec<Activation> {
        self.layers
            .iter()
            .map(|layer| match *layer {
                Layer::Dense { activation, .. } => activation,
                Layer::Dropout { .. } => Activation::Identity,
            })
            .collect()
    }

    /// `(inputs, outputs)` of each layer with parameters (the dense ones), input side first:
    /// the shapes of the flat layout's tensors.
    pub fn dense_shapes(&self) -> Vec<(usize, usize)> {
        let mut width = self.inputs;
        let mut shapes = Vec::new();
        for layer in &self.layers {
            let out = layer.outputs(width);
            if let Layer::Dense { .. } = layer {
                shapes.push((width, out));
            }
            width = out;
        }
        shapes
    }

    /// Input features.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Outputs of the last layer (the classes of a classifier). Allocates nothing: the
    /// executors ask it every step.
    pub fn outputs(&self) -> usize {
        self.layers.iter().fold(self.inputs, |width, layer| layer.outputs(width))
    }

    /// Where each tensor lives in the flat parameter buffer.
    pub fn layout(&self) -> ParamLayout {
        let mut p = 0;
        let of_layer = self
            .layers
            .iter()
            .map(|layer| match layer {
                Layer::Dense { .. } => {
                    p += 1;
                    Some(p - 1)
                }
                Layer::Dropout { .. } => None,
            })
            .collect();
        ParamLayout::new(&self.dense_shapes(), of_layer)
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
    /// One entry per layer with parameters (every [`Layer::Dense`]), input side first.
    pub layers: Vec<LayerSlots>,
    /// Total floats, padding included (padding is always zero and stays zero).
    pub len: usize,
    /// Per layer of the network: its index in `layers`, `None` for a layer without parameters.
    of_layer: Vec<Option<usize>>,
}

fn align_up(x: usize) -> usize {
    x.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}

impl ParamLayout {
    fn new(shapes: &[(usize, usize)], of_layer: Vec<Option<usize>>) -> Self {
        let mut at = 0;
        let mut layers = Vec::new();
        for &(inputs, outputs) in shapes {
            let weight = at;
            at = align_up(at + inputs * outputs);
            let bias = at;
            at = align_up(at + outputs);
            layers.push(LayerSlots { inputs, outputs, weight, bias });
        }
        ParamLayout { layers, len: at, of_layer }
    }

    /// The tensors of the network's layer `l` (counting every layer), `None` for a layer
    /// without parameters or past the end.
    pub fn of_layer(&self, l: usize) -> Option<&LayerSlots> {
        self.of_layer.get(l).copied().flatten().and_then(|p| self.layers.get(p))
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
