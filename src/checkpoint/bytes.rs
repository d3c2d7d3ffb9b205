//! Bytes in and out: encoding tensors and metadata as a safetensors file image, and reading a
//! file whole with its size bounded first.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::MAX_FILE_BYTES;
use crate::error::{Error, Result};

pub(super) fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(super) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Data(format!("cannot write as JSON: {e}")))
}

/// (name, shape, little-endian f32 bytes) to a safetensors file image, byte-for-byte the same
/// for the same input: the header is written here rather than by `safetensors::serialize`,
/// whose metadata `HashMap` came out in a different key order on every run.
///
/// The layout is the format's: an 8-byte little-endian header length, the JSON header (the
/// `__metadata__` object with its keys sorted, then each tensor's `dtype`, `shape` and
/// `data_offsets` in the order given), padded with spaces to a multiple of 8 bytes so that
/// the data starts aligned, then the tensors' bytes back to back in the same order.
pub(super) fn serialize(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let sorted: BTreeMap<&str, &str> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut header = format!("{{\"__metadata__\":{}", to_json(&sorted)?);
    let mut offset = 0usize;
    for (name, shape, bytes) in &tensors {
        let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if elements.and_then(|n| n.checked_mul(4)) != Some(bytes.len()) {
            let reason =
                format!("tensor `{name}` has {} bytes, its shape {shape:?} needs 4 per float", bytes.len());
            return Err(Error::file(path, format!("cannot serialize: {reason}")));
        }
        let end = offset + bytes.len();
        let info = format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[{offset},{end}]}}",
            to_json(name)?,
            to_json(shape)?
        );
        header.push_str(&info);
        offset = end;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, _, bytes) in &tensors {
        out.extend_from_slice(bytes);
    }
    Ok(out)
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
