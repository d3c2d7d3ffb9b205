//! [`Model`]: trained weights with their spec, loss and (for a model of a table) its
//! [`Preprocessing`], for inference in an application. Loads from and saves to safetensors;
//! predicts on the CPU reference (no device needed, the same numbers on every machine), or
//! hand the weights to a [`crate::Trainer`] to run on a GPU. A classifier predicts class
//! probabilities ([`Model::predict`]), a regression model values ([`Model::predict_values`]).

use std::path::Path;

use super::model::{load_model_file, save_model_with};
use super::preprocess::Preprocessing;
use crate::cpu::CpuMlp;
use crate::error::{Error, Result};
use crate::spec::pixel_lut;
use crate::spec::Optimizer;
use crate::spec::{Loss, Network};

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

/// A trained MLP: its spec, flat parameters (`spec.layout()`), the loss it was trained with,
/// and how a table's rows become its inputs (when it was trained on one).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    spec: Network,
    params: Vec<f32>,
    loss: Loss,
    preprocessing: Option<Preprocessing>,
}

impl Model {
    /// Checks that `params` fits `spec` and is finite. The model is a softmax classifier of
    /// arrays until told otherwise ([`Model::with_loss`], [`Model::with_preprocessing`]).
    pub fn new(spec: Network, params: Vec<f32>) -> Result<Self> {
        spec.validate()?;
        let len = spec.layout().len;
        if params.len() != len {
            return Err(Error::Shape(format!("{} parameters for a model of {len}", params.len())));
        }
        if let Some(i) = params.iter().position(|p| !p.is_finite()) {
            return Err(Error::Data(format!("parameter {i} is not finite")));
        }
        Ok(Model { spec, params, loss: Loss::SoftmaxCrossEntropy, preprocessing: None })
    }

    /// The model with the loss it was trained with (which decides what it predicts).
    pub fn with_loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// The model with the encoding of the table it was trained on, checked against its spec
    /// and loss (set the loss first).
    pub fn with_preprocessing(mut self, preprocessing: Preprocessing) -> Result<Self> {
        preprocessing.check(&self.spec, self.loss)?;
        self.preprocessing = Some(preprocessing);
        Ok(self)
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

    /// Loads a model saved by [`Model::save`] (or the demo's `--save`), with its loss and
    /// preprocessing when the file has them.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let file = load_model_file(path.as_ref())?;
        let model = Model::new(file.spec, file.params)?.with_loss(file.loss);
        match file.preprocessing {
            Some(p) => model.with_preprocessing(p),
            None => Ok(model),
        }
    }

    /// Saves as safetensors, atomically, with the loss and preprocessing; the same model
    /// gives the same bytes.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_model_with(path.as_ref(), &self.spec, &self.params, self.loss, self.preprocessing.as_ref())
    }

    /// The loss the model was trained with.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// How a table's rows become this model's inputs; `None` for a model of arrays.
    pub fn preprocessing(&self) -> Option<&Preprocessing> {
        self.preprocessing.as_ref()
    }

    /// The layer sizes and activations the parameters belong to.
    pub fn spec(&self) -> &Network {
        &self.spec
    }

    /// Flat parameters, laid out as `spec().layout()`.
    pub fn parameters(&self) -> &[f32] {
        &self.params
    }

    /// A classifier's probabilities and labels for `x: [rows, inputs]` (already scaled as
    /// in training): under the softmax one probability per class; under the sigmoid with one
    /// output (binary) the two classes' `[1 - p, p]`, so that the label is 1 where `p > 0.5`;
    /// with several outputs (multi-label) each label's own probability, the label the most
    /// probable one (threshold them at 0.5 for the set of labels). [`Error::Config`] for a
    /// regression model: use [`Model::predict_values`].
    pub fn predict(&self, x: &[f32]) -> Result<Prediction> {
        match self.loss {
            Loss::SoftmaxCrossEntropy => {
                let probabilities = self.cpu(x)?.predict(x)?;
                Ok(Prediction::from_probabilities(probabilities, self.spec.outputs()))
            }
            Loss::SigmoidCrossEntropy => {
                let z = self.cpu(x)?.outputs(x)?;
                let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
                match self.spec.outputs() {
                    1 => {
                        let probabilities = z.iter().flat_map(|&z| [1.0 - sigmoid(z), sigmoid(z)]).collect();
                        Ok(Prediction::from_probabilities(probabilities, 2))
                    }
                    k => Ok(Prediction::from_probabilities(z.into_iter().map(sigmoid).collect(), k)),
                }
            }
            loss => Err(Error::Config(format!(
                "a model trained with {} predicts values, not class probabilities; use predict_values",
                loss.describe()
            ))),
        }
    }

    /// A regression model's predictions `[rows, outputs]` for `x: [rows, inputs]` (already
    /// scaled as in training), in the target's units (a standardized target is brought back).
    /// [`Error::Config`] for a classifier: use [`Model::predict`].
    pub fn predict_values(&self, x: &[f32]) -> Result<Vec<f32>> {
        if !self.loss.is_regression() {
            return Err(Error::Config(format!(
                "a model trained with {} predicts classes; use predict for its probabilities",
                self.loss.describe()
            )));
        }
        let mut values = self.cpu(x)?.outputs(x)?;
        if let Some(p) = &self.preprocessing {
            p.unscale_target(&mut values)?;
        }
        Ok(values)
    }

    /// The CPU reference holding the weights, after checking that `x` is finite.
    fn cpu(&self, x: &[f32]) -> Result<CpuMlp> {
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("input value {i} is not finite")));
        }
        CpuMlp::new(self.spec.clone(), self.params.clone(), Optimizer::default())
    }

    /// Like [`Model::predict`] for u8 pixels (scaled by 1/255 as in training).
    pub fn predict_pixels(&self, pixels: &[u8]) -> Result<Prediction> {
        let lut = pixel_lut();
        let x: Vec<f32> = pixels.iter().map(|&p| lut[p as usize]).collect();
        self.predict(&x)
    }
}
