//! [`Model`]: trained weights with their spec, for inference in an application. Loads from
//! and saves to safetensors; predicts on the CPU reference (no device needed, the same
//! numbers on every machine), or hand the weights to a [`crate::Trainer`] to run on a GPU.

use std::path::Path;

use crate::checkpoint::{load_model, save_model};
use crate::cpu::CpuMlp;
use crate::error::{Error, Result};
use crate::spec::pixel_lut;
use crate::spec::Network;
use crate::spec::Optimizer;

/// Class probabilities and the most probable class of each row.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// `[rows, classes]` row-major softmax probabilities.
    pub probabilities: Vec<f32>,
    /// Argmax of each row (the first on ties).
    pub labels: Vec<usize>,
    /// Columns of `probabilities`: the model's output width.
    pub classes: usize,
}

impl Prediction {
    pub(crate) fn from_probabilities(probabilities: Vec<f32>, classes: usize) -> Self {
        let labels = probabilities
            .chunks(classes.max(1))
            .map(|row| row.iter().enumerate().fold(0, |best, (j, &p)| if p > row[best] { j } else { best }))
            .collect();
        Prediction { probabilities, labels, classes }
    }
}

/// A trained MLP: its spec and flat parameters (`spec.layout()`).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    spec: Network,
    params: Vec<f32>,
}

impl Model {
    /// Checks that `params` fits `spec` and is finite.
    pub fn new(spec: Network, params: Vec<f32>) -> Result<Self> {
        spec.validate()?;
        let len = spec.layout().len;
        if params.len() != len {
            return Err(Error::Shape(format!("{} parameters for a model of {len}", params.len())));
        }
        if let Some(i) = params.iter().position(|p| !p.is_finite()) {
            return Err(Error::Data(format!("parameter {i} is not finite")));
        }
        Ok(Model { spec, params })
    }

    /// Builds a model from per-layer weights `W: [inputs, outputs]` row-major and biases.
    pub fn from_layers(spec: Network, layers: &[(Vec<f32>, Vec<f32>)]) -> Result<Self> {
        spec.validate()?;
        let layout = spec.layout();
        if layers.len() != layout.layers.len() {
            return Err(Error::Shape(format!(
                "{} layers given, the spec has {}",
                layers.len(),
                layout.layers.len()
            )));
        }
        let mut params = vec![0.0; layout.len];
        for (l, ((w, b), slots)) in layers.iter().zip(&layout.layers).enumerate() {
            if w.len() != slots.inputs * slots.outputs || b.len() != slots.outputs {
                return Err(Error::Shape(format!(
                    "layer {l}: W needs {}x{} and b {} values, got {} and {}",
                    slots.inputs,
                    slots.outputs,
                    slots.outputs,
                    w.len(),
                    b.len()
                )));
            }
            params[slots.weight..slots.weight + w.len()].copy_from_slice(w);
            params[slots.bias..slots.bias + b.len()].copy_from_slice(b);
        }
        Model::new(spec, params)
    }

    /// Loads a model saved by [`Model::save`] (or the demo's `--save`).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let (spec, params) = load_model(path.as_ref())?;
        Model::new(spec, params)
    }

    /// Saves as safetensors, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_model(path.as_ref(), &self.spec, &self.params)
    }

    /// The layer sizes and activations the parameters belong to.
    pub fn spec(&self) -> &Network {
        &self.spec
    }

    /// Flat parameters, laid out as `spec().layout()`.
    pub fn parameters(&self) -> &[f32] {
        &self.params
    }

    /// Probabilities and labels for `x: [rows, inputs]`.
    pub fn predict(&self, x: &[f32]) -> Result<Prediction> {
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("input value {i} is not finite")));
        }
        let mut mlp = CpuMlp::new(self.spec.clone(), self.params.clone(), Optimizer::default())?;
        let probabilities = mlp.predict(x)?;
        Ok(Prediction::from_probabilities(probabilities, self.spec.outputs()))
    }

    /// Like [`Model::predict`] for u8 pixels (scaled by 1/255 as in training).
    pub fn predict_pixels(&self, pixels: &[u8]) -> Result<Prediction> {
        let lut = pixel_lut();
        let x: Vec<f32> = pixels.iter().map(|&p| lut[p as usize]).collect();
        self.predict(&x)
    }
}
