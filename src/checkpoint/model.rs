//! Saved models: `layers.{l}.weight` / `layers.{l}.bias` tensors with the spec in the metadata,
//! and, for a model trained on a table, its loss and [`Preprocessing`] (`loss`, `preprocessing`
//! keys). A file without those keys (the MNIST demo's, or one from before they existed) loads
//! as a softmax classifier of arrays.

use std::collections::HashMap;
use std::path::Path;

use super::bytes::{le_bytes, read_bounded, serialize, to_json};
use super::preprocess::Preprocessing;
use super::validate::{check_buffer, checked_layout, decode_into, Parsed};
use super::{BYTES_NAME, MODEL_FORMAT, VERSION};
use crate::atomic_file::write_atomic;
use crate::error::{Error, Result};
use crate::spec::{Loss, Network};

/// Writes `params` (flat, laid out as `spec.layout()`) as a safetensors model file, atomically.
/// Fails with [`Error::Shape`] on a bad spec or a buffer of the wrong length, and with
/// [`Error::Data`] on a NaN or infinite parameter (such a file could not be loaded back).
pub fn save_model(path: &Path, spec: &Network, params: &[f32]) -> Result<()> {
    write_model(path, spec, params, None, None)
}

/// [`save_model`] with the loss the model was trained with and, for a model of a table, its
/// [`Preprocessing`], checked against the spec first. The same arguments give the same bytes.
pub fn save_model_with(
    path: &Path,
    spec: &Network,
    params: &[f32],
    loss: Loss,
    preprocessing: Option<&Preprocessing>,
) -> Result<()> {
    if let Some(p) = preprocessing {
        p.check(spec, loss)?;
    }
    write_model(path, spec, params, Some(loss), preprocessing)
}

fn write_model(
    path: &Path,
    spec: &Network,
    params: &[f32],
    loss: Option<Loss>,
    preprocessing: Option<&Preprocessing>,
) -> Result<()> {
    spec.validate()?;
    let layout = spec.layout();
    check_buffer("params", params, &layout, false)?;
    let mut tensors = Vec::new();
    for (l, slots) in layout.layers.iter().enumerate() {
        let w = &params[slots.weight..slots.weight + slots.inputs * slots.outputs];
        let b = &params[slots.bias..slots.bias + slots.outputs];
        tensors.push((format!("layers.{l}.weight"), vec![slots.inputs, slots.outputs], le_bytes(w)));
        tensors.push((format!("layers.{l}.bias"), vec![slots.outputs], le_bytes(b)));
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), MODEL_FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("spec".to_string(), to_json(spec)?),
    ]);
    if let Some(loss) = loss {
        metadata.insert("loss".to_string(), to_json(&loss)?);
    }
    if let Some(p) = preprocessing {
        metadata.insert("preprocessing".to_string(), to_json(p)?);
    }
    write_atomic(path, &serialize(path, tensors, metadata)?)
}

/// Everything a model file holds.
pub(super) struct ModelFile {
    pub spec: Network,
    pub params: Vec<f32>,
    pub loss: Loss,
    pub preprocessing: Option<Preprocessing>,
}

/// Reads a whole model file: spec, parameters, loss (softmax cross-entropy when the file
/// does not say) and preprocessing (checked against the spec).
pub(super) fn load_model_file(path: &Path) -> Result<ModelFile> {
    model_from_bytes(path, &read_bounded(path)?)
}

/// Reads a model written by [`save_model`]: its spec and its flat parameters (padding zero).
pub fn load_model(path: &Path) -> Result<(Network, Vec<f32>)> {
    load_model_file(path).map(|m| (m.spec, m.params))
}

/// [`load_model`] on a file already in memory; errors name it `<in-memory safetensors>`.
pub fn load_model_bytes(bytes: &[u8]) -> Result<(Network, Vec<f32>)> {
    model_from_bytes(Path::new(BYTES_NAME), bytes).map(|m| (m.spec, m.params))
}

fn model_from_bytes(src: &Path, bytes: &[u8]) -> Result<ModelFile> {
    let file = Parsed::new(src, bytes, MODEL_FORMAT)?;
    let spec: Network = file.json("spec")?;
    let layout = checked_layout(src, &spec)?;
    let loss: Loss = file.json_or("loss", Loss::SoftmaxCrossEntropy)?;
    let preprocessing: Option<Preprocessing> = file.json_or("preprocessing", None)?;
    if let Some(p) = &preprocessing {
        p.check(&spec, loss).map_err(|e| Error::file(src, format!("metadata `preprocessing`: {e}")))?;
    }
    let mut expected = Vec::new();
    for (l, slots) in layout.layers.iter().enumerate() {
        let weight = (format!("layers.{l}.weight"), vec![slots.inputs, slots.outputs], slots.weight);
        expected.push(weight);
        expected.push((format!("layers.{l}.bias"), vec![slots.outputs], slots.bias));
    }
    file.expect_names(expected.iter().map(|(name, _, _)| name.as_str()))?;
    // Check every tensor's header before allocating the buffer they fill.
    let mut views = Vec::new();
    for (name, shape, offset) in &expected {
        views.push((name, file.f32_tensor(name, shape)?, *offset));
    }
    let mut params = vec![0.0f32; layout.len];
    for (name, data, offset) in views {
        decode_into(src, name, data, &mut params[offset..offset + data.len() / 4])?;
    }
    Ok(ModelFile { spec, params, loss, preprocessing })
}
