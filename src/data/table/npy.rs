//! NumPy files as plain arrays: one array from a `.npy`, the arrays `x` and `y` from an
//! `.npz` (what `numpy.savez(path, x=features, y=target)` writes, compressed or not). Bounds
//! come first: a file or archive entry over [`MAX_TABLE_BYTES`] is refused before it is read,
//! and the header's shape must match the data bytes exactly before anything is allocated
//! from it. `npyz` parses the header and the elements; `zip` opens the archive.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar};

use super::MAX_TABLE_BYTES;
use crate::error::{Error, Result};

/// A C-order array with its elements widened: floats to f64, integers and bools to i64.
pub(crate) struct Array {
    pub shape: Vec<usize>,
    pub data: Data,
}

/// The elements of an [`Array`].
pub(crate) enum Data {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

/// The array in a `.npy` file, called `name` in messages.
pub(crate) fn read_npy_file(path: &Path, name: &str) -> Result<Array> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > MAX_TABLE_BYTES {
        return Err(Error::file(path, format!("{len} bytes, over the {MAX_TABLE_BYTES}-byte limit")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path, name)
}

/// The arrays `x` and `y` of an `.npz` (entries `x.npy` and `y.npy`): an error without `x`,
/// `None` without `y`.
pub(crate) fn read_npz_file(path: &Path) -> Result<(Array, Option<Array>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        Error::file(
            path,
            format!("not an .npz (zip) archive ({e}); write it with numpy.savez(path, x=..., y=...)"),
        )
    })?;
    let mut read = |name: &str| -> Result<Option<Array>> {
        let Some(index) =
            archive.index_for_name(&format!("{name}.npy")).or_else(|| archive.index_for_name(name))
        else {
            return Ok(None);
        };
        let mut entry = archive
            .by_index(index)
            .map_err(|e| Error::file(path, format!("array `{name}`: cannot open it in the archive ({e})")))?;
        if entry.size() > MAX_TABLE_BYTES {
            return Err(Error::file(
                path,
                format!("array `{name}` is {} bytes, over the {MAX_TABLE_BYTES}-byte limit", entry.size()),
            ));
        }
        let mut bytes = Vec::new();
        // `take`: the entry's stated size is not trusted while decompressing.
        (&mut entry)
            .take(MAX_TABLE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::file(path, format!("array `{name}`: cannot decompress it ({e})")))?;
        parse(&bytes, path, name).map(Some)
    };
    let x = read("x")?;
    let y = read("y")?;
    let Some(x) = x else {
        let names: Vec<&str> = archive.file_names().collect();
        return Err(Error::file(
            path,
            format!(
                "no array `x` (the archive holds: {}); save the features as x and the target as y, \
                 numpy.savez(path, x=..., y=...)",
                if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
            ),
        ));
    };
    Ok((x, y))
}

/// Parses one `.npy` image: a plain little- or big-endian float, integer or bool dtype.
fn parse(bytes: &[u8], path: &Path, name: &str) -> Result<Array> {
    let err = |why: String| Error::file(path, format!("array `{name}` {why}"));
    let mut rest = bytes;
    let header = NpyHeader::from_reader(&mut rest)
        .map_err(|e| err(format!("is not a NumPy array ({e}); write it with numpy.save or numpy.savez")))?;
    let DType::Plain(ty) = header.dtype() else {
        return Err(err("has a structured dtype; expected a plain float or integer array".into()));
    };
    let shape = header
        .shape()
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| err(format!("has shape {:?}, too large for this machine", header.shape())))?;
    let bytes_needed = shape
        .iter()
        .try_fold(ty.num_bytes().unwrap_or(0), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| err(format!("has shape {shape:?}, too large for this machine")))?;
    let order = header.order();
    let supported = matches!(
        (ty.type_char(), ty.size_field()),
        (TypeChar::Float, 4 | 8) | (TypeChar::Int | TypeChar::Uint, 1 | 2 | 4 | 8) | (TypeChar::Bool, 1)
    );
    if !supported {
        return Err(err(format!(
            "has dtype `{ty}`; expected float32 or float64 features, integer class labels, or bools"
        )));
    }
    if rest.len() != bytes_needed {
        return Err(err(format!(
            "has {} data bytes but its shape {shape:?} of `{ty}` needs {bytes_needed}; the file is \
             truncated or corrupt",
            rest.len()
        )));
    }
    let npy = NpyFile::with_header(header, rest);
    let bad = |e: std::io::Error| err(format!("cannot be read ({e})"));
    let data = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 4) => {
            Data::Float(npy.into_vec::<f32>().map_err(bad)?.into_iter().map(f64::from).collect())
        }
        (TypeChar::Float, _) => Data::Float(npy.into_vec::<f64>().map_err(bad)?),
        (TypeChar::Int, 1) => Data::Int(widen(npy.into_vec::<i8>().map_err(bad)?)),
        (TypeChar::Int, 2) => Data::Int(widen(npy.into_vec::<i16>().map_err(bad)?)),
        (TypeChar::Int, 4) => Data::Int(widen(npy.into_vec::<i32>().map_err(bad)?)),
        (TypeChar::Int, _) => Data::Int(npy.into_vec::<i64>().map_err(bad)?),
        (TypeChar::Uint, 1) => Data::Int(widen(npy.into_vec::<u8>().map_err(bad)?)),
        (TypeChar::Uint, 2) => Data::Int(widen(npy.into_vec::<u16>().map_err(bad)?)),
        (TypeChar::Uint, 4) => Data::Int(widen(npy.into_vec::<u32>().map_err(bad)?)),
        (TypeChar::Uint, _) => {
            let wide = npy.into_vec::<u64>().map_err(bad)?;
            let data = wide.into_iter().map(i64::try_from).collect::<std::result::Result<Vec<_>, _>>();
            Data::Int(data.map_err(|_| err("holds a uint64 value above i64::MAX".into()))?)
        }
        _ => Data::Int(npy.into_vec::<bool>().map_err(bad)?.into_iter().map(i64::from).collect()),
    };
    let mut array = Array { shape, data };
    if order == Order::Fortran {
        array.reorder_to_c();
    }
    Ok(array)
}

fn widen<T: Into<i64>>(values: Vec<T>) -> Vec<i64> {
    values.into_iter().map(Into::into).collect()
}

impl Array {
    /// Rewrites a Fortran-order (column-major) array in C order.
    fn reorder_to_c(&mut self) {
        fn reverse_axes<T: Copy>(data: &[T], shape: &[usize]) -> Vec<T> {
            // A Fortran array of shape s is the C array of shape reverse(s), transposed.
            let rank = shape.len();
            let mut strides = vec![1usize; rank];
            for axis in 1..rank {
                strides[axis] = strides[axis - 1] * shape[axis - 1];
            }
            let mut out = Vec::with_capacity(data.len());
            let mut index = vec![0usize; rank];
            for _ in 0..data.len() {
                out.push(data[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
                for axis in (0..rank).rev() {
                    index[axis] += 1;
                    if index[axis] < shape[axis] {
                        break;
                    }
                    index[axis] = 0;
                }
            }
            out
        }
        if self.shape.len() < 2 {
            return;
        }
        self.data = match &self.data {
            Data::Float(v) => Data::Float(reverse_axes(v, &self.shape)),
            Data::Int(v) => Data::Int(reverse_axes(v, &self.shape)),
        };
    }

    /// The dtype family in words, for messages.
    pub fn family(&self) -> &'static str {
        match self.data {
            Data::Float(_) => "float",
            Data::Int(_) => "integer",
        }
    }
}
