//! Checks shared by both formats: the untrusted-input checks on a file being loaded (header,
//! metadata, tensor names, dtypes, shapes and byte ranges, the spec's size, finite values, zero
//! padding) and the matching checks on a buffer before it is saved.

use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;

use super::{CHECKPOINT_FORMAT, MAX_LAYERS, MAX_PARAM_FLOATS, MODEL_FORMAT, VERSION};
use crate::error::{Error, Result};
use crate::spec::{Network, ParamLayout, TENSOR_ALIGN};

/// A parsed safetensors header (offsets already checked against the buffer by the crate).
pub(super) struct Parsed<'a> {
    pub(super) src: &'a Path,
    metadata: Metadata,
    data: &'a [u8],
}

impl<'a> Parsed<'a> {
    /// Parses the header and checks `format` and `version`.
    pub(super) fn new(src: &'a Path, bytes: &'a [u8], format: &str) -> Result<Self> {
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
    pub(super) fn text(&self, key: &str) -> Result<&str> {
        self.metadata.metadata().as_ref().and_then(|m| m.get(key)).map(String::as_str).ok_or_else(|| {
            Error::file(self.src, format!("metadata key `{key}` is missing; not a wgtrain file"))
        })
    }

    /// A metadata string holding JSON.
    pub(super) fn json<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.text(key)?)
            .map_err(|e| Error::file(self.src, format!("metadata `{key}` is not valid: {e}")))
    }

    /// A metadata string holding JSON, or `default` when the key is absent (a file written
    /// before the key existed).
    pub(super) fn json_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T> {
        match self.metadata.metadata().as_ref().and_then(|m| m.get(key)) {
            None => Ok(default),
            Some(_) => self.json(key),
        }
    }

    /// Fails unless the tensor names are exactly `expected`.
    pub(super) fn expect_names<'n>(&self, expected: impl IntoIterator<Item = &'n str>) -> Result<()> {
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

    pub(super) fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.metadata.info(name).ok_or_else(|| Error::file(self.src, format!("tensor `{name}` is missing")))
    }

    /// The raw little-endian bytes of tensor `name`, which must be F32 of shape `shape`.
    pub(super) fn f32_tensor(&self, name: &str, shape: &[usize]) -> Result<&'a [u8]> {
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
pub(super) fn checked_layout(src: &Path, spec: &Network) -> Result<ParamLayout> {
    spec.validate().map_err(|e| Error::file(src, format!("metadata `spec`: {e}")))?;
    if spec.layers.len() > MAX_LAYERS {
        let reason = format!("spec has {} layers, over the limit of {MAX_LAYERS}", spec.layers.len());
        return Err(Error::file(src, reason));
    }
    let align = |x: usize| x.checked_add(TENSOR_ALIGN - 1).map(|x| x / TENSOR_ALIGN * TENSOR_ALIGN);
    let mut len = Some(0usize);
    let widths = spec.widths();
    // The dense layers' tensors; a dropout layer has none.
    for (inputs, outputs) in spec.dense_shapes() {
        len = len
            .and_then(|at| align(at.checked_add(inputs.checked_mul(outputs)?)?))
            .and_then(|at| align(at.checked_add(outputs)?));
    }
    match len {
        Some(len) if len <= MAX_PARAM_FLOATS => Ok(spec.layout()),
        _ => Err(Error::file(
            src,
            format!("spec {:?} needs more than {MAX_PARAM_FLOATS} parameters; refusing to load it", widths),
        )),
    }
}

/// Decodes little-endian f32s into `out`, failing with [`Error::Data`] on NaN or infinity.
pub(super) fn decode_into(src: &Path, name: &str, data: &[u8], out: &mut [f32]) -> Result<()> {
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
pub(super) fn check_buffer(
    name: &str,
    buffer: &[f32],
    layout: &ParamLayout,
    may_be_empty: bool,
) -> Result<()> {
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
pub(super) fn nonzero_padding(buffer: &[f32], layout: &ParamLayout) -> Option<usize> {
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
