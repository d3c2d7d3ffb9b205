//! Saved models and resumable training state, both as safetensors files.
//!
//! A model file holds `layers.{l}.weight: F32 [inputs, outputs]` and `layers.{l}.bias: F32
//! [outputs]` with `__metadata__ = {"format": "wgtrain-mlp", "version": "1", "spec": <MlpSpec
//! JSON>}`, so other tools (PyTorch, numpy) read it as plain tensors. A checkpoint,
//! `checkpoint.safetensors` in a folder, holds the flat buffers `params`, `m`, `v`, `best_params`
//! (F32, 1-D, laid out as `spec.layout()`; `best_params` has length 0 when there is no snapshot)
//! and the rest of [`TrainingState`] as JSON strings in the metadata.
//!
//! Both loaders treat the file as untrusted: the file size is bounded before it is read, the
//! spec's parameter count is bounded with checked arithmetic before anything is sized from it,
//! every tensor must be present with the exact name, dtype, shape and byte length expected (no
//! extra ones), and every value must be finite. Nothing is allocated from a size the file declares
//! until the bytes backing it have been seen. Every error names the file.
//!
//! Files are written atomically (`write_atomic`): a crash leaves the old file or the new one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rand_pcg::Pcg64Mcg;
use safetensors::tensor::{Metadata, TensorInfo, TensorView};
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{MlpSpec, ParamLayout, TENSOR_ALIGN};
use crate::optim::Optimizer;
use crate::train::early_stopping::EarlyStopping;
use crate::train::history::History;

/// Everything needed to continue training exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// The model's shape.
    pub spec: MlpSpec,
    /// The update rule and its hyper-parameters.
    pub optimizer: Optimizer,
    /// Flat parameters and optimizer moments, laid out as `spec.layout()`.
    pub params: Vec<f32>,
    /// Adam's first moment (SGD's momentum buffer), laid out as `params`.
    pub m: Vec<f32>,
    /// Adam's second moment, laid out as `params` (zeros for SGD).
    pub v: Vec<f32>,
    /// Optimizer steps taken (Adam's t).
    pub step: u64,
    /// Epochs completed.
    pub epoch: usize,
    /// The shuffle generator, as it stands after `epoch` epochs.
    pub rng: Pcg64Mcg,
    /// The early-stopping rule with its progress, if the run uses one.
    pub early_stopping: Option<EarlyStopping>,
    /// Weights snapshotted by restore_best_weights (empty if none).
    pub best_params: Vec<f32>,
    /// The epochs completed so far.
    pub history: History,
}

/// The file [`save_checkpoint`] writes in its folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// The most floats a flat buffer read from a file may hold (padding included): 2^26, 256 MiB.
/// Far above any MLP this crate trains, far below what would hurt to allocate.
pub const MAX_PARAM_FLOATS: usize = 1 << 26;

/// The most layers a spec read from a file may have.
pub const MAX_LAYERS: usize = 1024;

/// The largest file either loader reads: four buffers of [`MAX_PARAM_FLOATS`] (1 GiB) plus
/// 256 MiB for the header (a long history).
pub const MAX_FILE_BYTES: u64 = 4 * 4 * MAX_PARAM_FLOATS as u64 + (1 << 28);

const MODEL_FORMAT: &str = "wgtrain-mlp";
const CHECKPOINT_FORMAT: &str = "wgtrain-checkpoint";
const VERSION: &str = "1";
/// The name [`load_model_bytes`] and [`load_checkpoint_bytes`] give their input in errors.
const BYTES_NAME: &str = "<in-memory safetensors>";

/// The checkpoint's flat buffers, in file order.
const STATE_TENSORS: [&str; 4] = ["params", "m", "v", "best_params"];

// ---------------------------------------------------------------------------------------------
// Saved models

/// Writes `params` (flat, laid out as `spec.layout()`) as a safetensors model file, atomically.
/// Fails with [`Error::Shape`] on a bad spec or a buffer of the wrong length, and with
/// [`Error::Data`] on a NaN or infinite parameter (such a file could not be loaded back).
pub fn save_model(path: &Path, spec: &MlpSpec, params: &[f32]) -> Result<()> {
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
    let metadata = HashMap::from([
        ("format".to_string(), MODEL_FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("spec".to_string(), to_json(spec)?),
    ]);
    write_atomic(path, &serialize(path, tensors, metadata)?)
}

/// Reads a model written by [`save_model`]: its spec and its flat parameters (padding zero).
pub fn load_model(path: &Path) -> Result<(MlpSpec, Vec<f32>)> {
    model_from_bytes(path, &read_bounded(path)?)
}

/// [`load_model`] on a file already in memory; errors name it `<in-memory safetensors>`.
pub fn load_model_bytes(bytes: &[u8]) -> Result<(MlpSpec, Vec<f32>)> {
    model_from_bytes(Path::new(BYTES_NAME), bytes)
}

fn model_from_bytes(src: &Path, bytes: &[u8]) -> Result<(MlpSpec, Vec<f32>)> {
    let file = Parsed::new(src, bytes, MODEL_FORMAT)?;
    let spec: MlpSpec = file.json("spec")?;
    let layout = checked_layout(src, &spec)?;
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
    Ok((spec, params))
}

// ---------------------------------------------------------------------------------------------
// Training checkpoints

/// Writes `state` to `dir/checkpoint.safetensors` atomically, creating `dir` if needed, and
/// returns the file's path. The state is checked as [`load_checkpoint`] would check it.
pub fn save_checkpoint(dir: &Path, state: &TrainingState) -> Result<PathBuf> {
    state.spec.validate()?;
    state.optimizer.validate()?;
    if let Some(es) = &state.early_stopping {
        es.validate()?;
    }
    let layout = state.spec.layout();
    for (name, buffer) in STATE_TENSORS.iter().zip(state_buffers(state)) {
        check_buffer(name, buffer, &layout, *name == "best_params")?;
    }
    let tensors = STATE_TENSORS
        .iter()
        .zip(state_buffers(state))
        .map(|(name, buffer)| (name.to_string(), vec![buffer.len()], le_bytes(buffer)))
        .collect();
    let metadata = HashMap::from([
        ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("spec".to_string(), to_json(&state.spec)?),
        ("optimizer".to_string(), to_json(&state.optimizer)?),
        ("step".to_string(), to_json(&state.step)?),
        ("epoch".to_string(), to_json(&state.epoch)?),
        ("rng".to_string(), to_json(&state.rng)?),
        ("early_stopping".to_string(), to_json(&state.early_stopping)?),
        ("history".to_string(), to_json(&state.history)?),
    ]);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(CHECKPOINT_FILE);
    write_atomic(&path, &serialize(&path, tensors, metadata)?)?;
    Ok(path)
}

/// Reads `dir/checkpoint.safetensors`: `Ok(None)` when there is no such file, an error when it
/// exists but is unreadable, truncated or inconsistent (never silently ignored).
pub fn load_checkpoint(dir: &Path) -> Result<Option<TrainingState>> {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
        Ok(_) => {}
    }
    checkpoint_from_bytes(&path, &read_bounded(&path)?).map(Some)
}

/// [`load_checkpoint`]'s checks on a checkpoint file already in memory.
pub fn load_checkpoint_bytes(bytes: &[u8]) -> Result<TrainingState> {
    checkpoint_from_bytes(Path::new(BYTES_NAME), bytes)
}

fn checkpoint_from_bytes(src: &Path, bytes: &[u8]) -> Result<TrainingState> {
    let file = Parsed::new(src, bytes, CHECKPOINT_FORMAT)?;
    let spec: MlpSpec = file.json("spec")?;
    let layout = checked_layout(src, &spec)?;
    let optimizer: Optimizer = file.json("optimizer")?;
    optimizer.validate().map_err(|e| Error::file(src, format!("metadata `optimizer`: {e}")))?;
    let early_stopping: Option<EarlyStopping> = file.json("early_stopping")?;
    if let Some(es) = &early_stopping {
        es.validate().map_err(|e| Error::file(src, format!("metadata `early_stopping`: {e}")))?;
    }
    file.expect_names(STATE_TENSORS)?;
    // Check every tensor's header before allocating the buffers they fill.
    let views = [
        state_tensor(&file, "params", &spec, &layout)?,
        state_tensor(&file, "m", &spec, &layout)?,
        state_tensor(&file, "v", &spec, &layout)?,
        state_tensor(&file, "best_params", &spec, &layout)?,
    ];
    let decode = |name: &str, data: &[u8]| -> Result<Vec<f32>> {
        let mut buffer = vec![0.0f32; data.len() / 4];
        decode_into(src, name, data, &mut buffer)?;
        match nonzero_padding(&buffer, &layout) {
            Some(i) => Err(Error::file(src, format!("`{name}`[{i}] is padding but not zero"))),
            None => Ok(buffer),
        }
    };
    let [params, m, v, best_params] = views;
    Ok(TrainingState {
        spec,
        optimizer,
        params: decode("params", params)?,
        m: decode("m", m)?,
        v: decode("v", v)?,
        step: file.json("step")?,
        epoch: file.json("epoch")?,
        rng: file.json("rng")?,
        early_stopping,
        best_params: decode("best_params", best_params)?,
        history: file.json("history")?,
    })
}

/// A checkpoint buffer's bytes: 1-D F32 of `layout.len` floats (or 0 for `best_params`).
fn state_tensor<'a>(file: &Parsed<'a>, name: &str, spec: &MlpSpec, layout: &ParamLayout) -> Result<&'a [u8]> {
    let len = match file.info(name)?.shape[..] {
        [len] => len,
        ref shape => {
            let reason = format!("tensor `{name}` has shape {shape:?}, expected 1-D");
            return Err(Error::file(file.src, reason));
        }
    };
    if len != layout.len && !(name == "best_params" && len == 0) {
        let also = if name == "best_params" { " or 0" } else { "" };
        let reason =
            format!("tensor `{name}` has {len} floats, the spec {:?} needs {}{also}", spec.sizes, layout.len);
        return Err(Error::file(file.src, reason));
    }
    file.f32_tensor(name, &[len])
}

fn state_buffers(state: &TrainingState) -> [&[f32]; 4] {
    [&state.params, &state.m, &state.v, &state.best_params]
}

// ---------------------------------------------------------------------------------------------
// Checks shared by both formats

/// A parsed safetensors header (offsets already checked against the buffer by the crate).
struct Parsed<'a> {
    src: &'a Path,
    metadata: Metadata,
    data: &'a [u8],
}

impl<'a> Parsed<'a> {
    /// Parses the header and checks `format` and `version`.
    fn new(src: &'a Path, bytes: &'a [u8], format: &str) -> Result<Self> {
        let (n, metadata) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::file(src, format!("not a valid safetensors file: {e}")))?;
        // read_metadata checked that 8 + n + data == bytes.len().
        let data = bytes.get(8 + n..).unwrap_or_default();
        let parsed = Parsed { src, metadata, data };
        let found = parsed.text("format")?;
        if found != format {
            let hint = match found {
                MODEL_FORMAT => " (this is a saved model: use load_model)",
                CHECKPOINT_FORMAT => " (this is a training checkpoint: use load_checkpoint)",
                _ => "",
            };
            let reason = format!("metadata format is {found:?}, expected {format:?}{hint}");
            return Err(Error::file(src, reason));
        }
        let version = parsed.text("version")?;
        if version != VERSION {
            let reason = format!(
                "{format} version {version:?} is not supported (this wgtrain reads {VERSION:?}); \
                 use a matching wgtrain"
            );
            return Err(Error::file(src, reason));
        }
        Ok(parsed)
    }

    /// A metadata string.
    fn text(&self, key: &str) -> Result<&str> {
        self.metadata.metadata().as_ref().and_then(|m| m.get(key)).map(String::as_str).ok_or_else(|| {
            Error::file(self.src, format!("metadata key `{key}` is missing; not a wgtrain file"))
        })
    }

    /// A metadata string holding JSON.
    fn json<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.text(key)?)
            .map_err(|e| Error::file(self.src, format!("metadata `{key}` is not valid: {e}")))
    }

    /// Fails unless the tensor names are exactly `expected`.
    fn expect_names<'n>(&self, expected: impl IntoIterator<Item = &'n str>) -> Result<()> {
        let expected: Vec<&str> = expected.into_iter().collect();
        let present = self.metadata.offset_keys();
        if let Some(missing) = expected.iter().find(|name| self.metadata.info(name).is_none()) {
            return Err(Error::file(self.src, format!("tensor `{missing}` is missing")));
        }
        if let Some(extra) = present.iter().find(|name| !expected.contains(&name.as_str())) {
            return Err(Error::file(self.src, format!("unexpected tensor `{extra}`")));
        }
        Ok(())
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.metadata.info(name).ok_or_else(|| Error::file(self.src, format!("tensor `{name}` is missing")))
    }

    /// The raw little-endian bytes of tensor `name`, which must be F32 of shape `shape`.
    fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<&'a [u8]> {
        let info = self.info(name)?;
        if info.dtype != Dtype::F32 {
            let reason = format!("tensor `{name}` is {:?}, expected F32", info.dtype);
            return Err(Error::file(self.src, reason));
        }
        if info.shape != shape {
            let reason = format!("tensor `{name}` has shape {:?}, expected {shape:?}", info.shape);
            return Err(Error::file(self.src, reason));
        }
        let (start, end) = info.data_offsets;
        let expected = shape.iter().try_fold(4usize, |n, &d| n.checked_mul(d));
        match self.data.get(start..end) {
            Some(data) if Some(data.len()) == expected => Ok(data),
            _ => Err(Error::file(self.src, format!("tensor `{name}` has a bad byte range"))),
        }
    }
}

/// The spec's layout, after checking it with `validate` and bounding its size with checked
/// arithmetic (a spec is small text that may describe an enormous model).
fn checked_layout(src: &Path, spec: &MlpSpec) -> Result<ParamLayout> {
    spec.validate().map_err(|e| Error::file(src, format!("metadata `spec`: {e}")))?;
    if spec.layers() > MAX_LAYERS {
        let reason = format!("spec has {} layers, over the limit of {MAX_LAYERS}", spec.layers());
        return Err(Error::file(src, reason));
    }
    let align = |x: usize| x.checked_add(TENSOR_ALIGN - 1).map(|x| x / TENSOR_ALIGN * TENSOR_ALIGN);
    let mut len = Some(0usize);
    for w in spec.sizes.windows(2) {
        len = len
            .and_then(|at| align(at.checked_add(w[0].checked_mul(w[1])?)?))
            .and_then(|at| align(at.checked_add(w[1])?));
    }
    match len {
        Some(len) if len <= MAX_PARAM_FLOATS => Ok(spec.layout()),
        _ => Err(Error::file(
            src,
            format!(
                "spec {:?} needs more than {MAX_PARAM_FLOATS} parameters; refusing to load it",
                spec.sizes
            ),
        )),
    }
}

/// Decodes little-endian f32s into `out`, failing with [`Error::Data`] on NaN or infinity.
fn decode_into(src: &Path, name: &str, data: &[u8], out: &mut [f32]) -> Result<()> {
    for (i, (chunk, out)) in data.chunks_exact(4).zip(out.iter_mut()).enumerate() {
        let value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if !value.is_finite() {
            return Err(Error::Data(format!(
                "{}: tensor `{name}` element {i} is {value}; the saved model diverged",
                src.display()
            )));
        }
        *out = value;
    }
    Ok(())
}

/// Checks a flat buffer before saving: its length (`layout.len`, or 0 when `may_be_empty`),
/// finite values, zero padding.
fn check_buffer(name: &str, buffer: &[f32], layout: &ParamLayout, may_be_empty: bool) -> Result<()> {
    if buffer.is_empty() && may_be_empty {
        return Ok(());
    }
    if buffer.len() != layout.len {
        return Err(Error::Shape(format!(
            "`{name}` has {} floats, the layout needs {}",
            buffer.len(),
            layout.len
        )));
    }
    if let Some(i) = buffer.iter().position(|x| !x.is_finite()) {
        return Err(Error::Data(format!(
            "`{name}`[{i}] is {}; a file with it could not be loaded back",
            buffer[i]
        )));
    }
    match nonzero_padding(buffer, layout) {
        Some(i) => Err(Error::Data(format!("`{name}`[{i}] is padding but not zero"))),
        None => Ok(()),
    }
}

/// The first float outside the layout's tensors that is not zero (the layout's invariant), if
/// any; `None` for an empty buffer.
fn nonzero_padding(buffer: &[f32], layout: &ParamLayout) -> Option<usize> {
    if buffer.is_empty() {
        return None;
    }
    let mut at = 0;
    for slots in &layout.layers {
        for (start, len) in [(slots.weight, slots.inputs * slots.outputs), (slots.bias, slots.outputs)] {
            if let Some(i) = (at..start).find(|&i| buffer[i] != 0.0) {
                return Some(i);
            }
            at = start + len;
        }
    }
    (at..buffer.len()).find(|&i| buffer[i] != 0.0)
}

// ---------------------------------------------------------------------------------------------
// Bytes in and out

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Data(format!("cannot write as JSON: {e}")))
}

/// (name, shape, little-endian f32 bytes) to a safetensors file image.
fn serialize(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let fail = |e: safetensors::SafeTensorError| Error::file(path, format!("cannot serialize: {e}"));
    let mut views = Vec::new();
    for (name, shape, bytes) in &tensors {
        views.push((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes).map_err(fail)?));
    }
    safetensors::serialize(views, Some(metadata)).map_err(fail)
}

/// The whole file, refusing one over [`MAX_FILE_BYTES`] before reading it (and reading at most
/// one byte more, should it grow meanwhile).
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_big = || Error::file(path, format!("over the {MAX_FILE_BYTES}-byte limit"));
    if len > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Makes temporary names unique between threads of one process (the pid separates processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` so that a crash at any point leaves the old file or the new one,
/// never a mix: write a temporary file in the same folder (rename is atomic only within one
/// file system), flush it to disk, rename it over `path`, then flush the folder so the rename
/// itself survives a power cut.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| Error::file(path, "not a file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let unique = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{}.tmp.{}.{unique}", name.to_string_lossy(), std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes).and_then(|_| file.sync_all()))
        .and_then(|_| std::fs::rename(&temp, path))
        .map_err(|e| Error::io(path, e));
    if let Err(e) = written {
        // Best effort: the error to report is the one above.
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Windows cannot open a folder as a file; its renames are durable enough with the file synced.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}
