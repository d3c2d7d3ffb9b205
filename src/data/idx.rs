//! Our own reader for the IDX format of MNIST and Fashion-MNIST, raw or gzipped.
//!
//! Why not the `mnist` crate: it panics on a missing or corrupt file, cannot read `.gz`, and
//! does not check that the payload is as long as the header says, so it cannot give a caller an
//! error to act on. This reader returns an [`Error`] for every bad input instead.
//!
//! The header is untrusted: its sizes are multiplied with `checked_mul` and compared with the
//! bytes actually present *before* anything sized from the header is allocated, so a header
//! claiming four billion images costs nothing. Gzip is detected by its magic bytes, not by the
//! file name, and decompression stops at the size the header declares (at most
//! [`MAX_IDX_BYTES`]), so a zip bomb returns an error instead of filling memory.
//!
//! Layout (big-endian u32s): magic `0x0000_08DD` (`08` = u8 data, `DD` = dimension count), one
//! size per dimension, then the u8 payload row-major.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// The largest IDX file (after decompression) we accept: 1 GiB. The largest common IDX set,
/// EMNIST ByClass, is about 550 MB.
pub const MAX_IDX_BYTES: usize = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Images decoded from an IDX file: `pixels` is row-major `[count, rows * cols]`.
#[derive(Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// `[count, rows * cols]` row-major.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for IdxImages {
    // Printing 47 million pixels helps nobody.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdxImages {{ count: {}, rows: {}, cols: {} }}", self.count, self.rows, self.cols)
    }
}

/// The two IDX kinds we read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Images => 0x0000_0803,
            Kind::Labels => 0x0000_0801,
        }
    }

    /// Magic plus one u32 per dimension.
    fn header_len(self) -> usize {
        match self {
            Kind::Images => 16,
            Kind::Labels => 8,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Images => "IDX images: u8, 3 dimensions",
            Kind::Labels => "IDX labels: u8, 1 dimension",
        }
    }
}

/// What a valid header declares.
struct Header {
    count: usize,
    rows: usize,
    cols: usize,
    /// Header plus payload, in bytes; computed without overflow.
    total_len: usize,
}

impl Header {
    fn what(&self, kind: Kind) -> String {
        match kind {
            Kind::Images => format!("{} images of {}x{} pixels", self.count, self.rows, self.cols),
            Kind::Labels => format!("{} labels", self.count),
        }
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Parses and checks the header; `bytes` may hold only a prefix of the file.
/// Errors are plain reasons: the caller adds the file name or wraps them in [`Error::Data`].
fn parse_header(kind: Kind, bytes: &[u8]) -> std::result::Result<Header, String> {
    // The magic first: a short file of the wrong kind is better explained by its kind.
    if bytes.len() >= 4 && be_u32(bytes, 0) != kind.magic() {
        return Err(wrong_magic(kind, be_u32(bytes, 0), bytes));
    }
    if bytes.len() < kind.header_len() {
        return Err(format!(
            "truncated: {} bytes, shorter than the {}-byte header of {}",
            bytes.len(),
            kind.header_len(),
            kind.describe()
        ));
    }
    let dim = |i: usize| be_u32(bytes, 4 + 4 * i) as usize;
    let (count, rows, cols) = match kind {
        Kind::Images => (dim(0), dim(1), dim(2)),
        Kind::Labels => (dim(0), 1, 1),
    };
    if rows == 0 || cols == 0 {
        return Err(format!("header declares empty {rows}x{cols} images"));
    }
    let total_len = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .and_then(|n| n.checked_add(kind.header_len()))
        .ok_or_else(|| format!("header declares {count} records of {rows}x{cols}, a size that overflows"))?;
    Ok(Header { count, rows, cols, total_len })
}

/// A wrong-magic reason with a hint for the mistakes we can recognise.
fn wrong_magic(kind: Kind, found: u32, bytes: &[u8]) -> String {
    let hint = if bytes.starts_with(&GZIP_MAGIC) {
        "; this is gzip data, decompress it first"
    } else if found == Kind::Labels.magic() {
        "; this is a labels file (are the file names swapped?)"
    } else if found == Kind::Images.magic() {
        "; this is an images file (are the file names swapped?)"
    } else {
        "; this is not an IDX file of u8 data"
    };
    format!("wrong magic number 0x{found:08x}, expected 0x{:08x} ({}){hint}", kind.magic(), kind.describe())
}

/// Checks the whole buffer against its header and returns the header and the payload.
fn parse(kind: Kind, bytes: &[u8]) -> std::result::Result<(Header, &[u8]), String> {
    let header = parse_header(kind, bytes)?;
    if bytes.len() < header.total_len {
        return Err(format!(
            "truncated: the header declares {} ({} bytes with the header) but there are only {}",
            header.what(kind),
            header.total_len,
            bytes.len()
        ));
    }
    if bytes.len() > header.total_len {
        return Err(format!(
            "{} trailing bytes after the {} bytes the header declares ({})",
            bytes.len() - header.total_len,
            header.total_len,
            header.what(kind)
        ));
    }
    Ok((header, &bytes[kind.header_len()..]))
}

fn images_from(bytes: &[u8]) -> std::result::Result<IdxImages, String> {
    let (h, payload) = parse(Kind::Images, bytes)?;
    Ok(IdxImages { count: h.count, rows: h.rows, cols: h.cols, pixels: payload.to_vec() })
}

fn labels_from(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    parse(Kind::Labels, bytes).map(|(_, payload)| payload.to_vec())
}

/// Parses an uncompressed IDX images file (magic `0x00000803`) held in memory.
/// Every malformation is an [`Error::Data`]; nothing is allocated before the sizes check out.
pub fn parse_idx_images(bytes: &[u8]) -> Result<IdxImages> {
    images_from(bytes).map_err(Error::Data)
}

/// Parses an uncompressed IDX labels file (magic `0x00000801`) held in memory.
/// Every malformation is an [`Error::Data`]. Label values are not range-checked here: the
/// number of classes belongs to the data set, see [`crate::data::Dataset::new`].
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    labels_from(bytes).map_err(Error::Data)
}

/// Reads an IDX images file, raw or gzipped. Errors are [`Error::File`] naming `path`.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    read_and_parse(path.as_ref(), Kind::Images, images_from)
}

/// Reads an IDX labels file, raw or gzipped. Errors are [`Error::File`] naming `path`.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    read_and_parse(path.as_ref(), Kind::Labels, labels_from)
}

/// Reads `path`, decompresses it when it starts with the gzip magic, and parses the result.
fn read_and_parse<T>(
    path: &Path,
    kind: Kind,
    parse: fn(&[u8]) -> std::result::Result<T, String>,
) -> Result<T> {
    let raw = read_file(path)?;
    let gzipped = raw.starts_with(&GZIP_MAGIC);
    let bytes = if gzipped { gunzip(&raw, kind).map_err(|r| Error::file(path, r))? } else { raw };
    parse(&bytes).map_err(|reason| {
        // A `.gz` name on a raw file is legal but confusing when the content is also wrong.
        let gz_name = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let note = if gz_name && !gzipped { " (the name ends in .gz but it is not gzip)" } else { "" };
        Error::file(path, format!("{reason}{note}"))
    })
}

/// The whole file, refusing files over [`MAX_IDX_BYTES`] before reading them.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > MAX_IDX_BYTES as u64 {
        return Err(Error::file(path, format!("{len} bytes, over the {MAX_IDX_BYTES}-byte limit")));
    }
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Decompresses the header first, then exactly the payload it declares plus one byte to see
/// whether more follows, so memory never exceeds the real data or [`MAX_IDX_BYTES`].
fn gunzip(compressed: &[u8], kind: Kind) -> std::result::Result<Vec<u8>, String> {
    let mut decoder = MultiGzDecoder::new(compressed);
    let mut out = Vec::new();
    read_up_to(&mut decoder, kind.header_len(), &mut out)?;
    let header = parse_header(kind, &out)?;
    if header.total_len > MAX_IDX_BYTES {
        return Err(format!(
            "the header declares {} ({} bytes), over the {MAX_IDX_BYTES}-byte limit",
            header.what(kind),
            header.total_len
        ));
    }
    read_up_to(&mut decoder, header.total_len - out.len(), &mut out)?;
    if out.len() < header.total_len {
        // `parse` words the truncation with the exact sizes.
        return Ok(out);
    }
    let mut extra = Vec::new();
    read_up_to(&mut decoder, 1, &mut extra)?;
    if !extra.is_empty() {
        return Err(format!(
            "trailing data after the {} decompressed bytes the header declares ({})",
            header.total_len,
            header.what(kind)
        ));
    }
    Ok(out)
}

/// Appends at most `n` more bytes; fewer only at the end of the stream.
fn read_up_to(decoder: &mut impl Read, n: usize, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    decoder
        .by_ref()
        .take(n as u64)
        .read_to_end(out)
        .map(|_| ())
        .map_err(|e| format!("gzip stream is corrupt or truncated: {e}"))
}
