//! Bytes in and out: encoding tensors and metadata as a safetensors file image, and reading a
//! file whole with its size bounded first.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde::Serialize;

use super::MAX_FILE_BYTES;
use crate::error::{Error, Result};

pub(super) fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Data(format!("cannot write as JSON: {e}")))
}

/// (name, shape, little-endian f32 bytes) to a safetensors file image.
pub(super) fn serialize(
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
pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
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
