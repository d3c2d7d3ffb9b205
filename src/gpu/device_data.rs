//! A dataset resident on one device: its features (u8 pixels packed four to a u32, a quarter
//! of the f32 size, so the 47 MB MNIST training set fits one storage binding where its 188 MB
//! f32 form would not; or f32 values as given), u32 labels, and an index buffer saying which
//! rows, in which order, a pass visits. Uploaded once; per epoch only the index order is
//! rewritten.
//!
//! A set too large for one binding is not resident: it passes through chunk slots, sets of
//! the same layout sized for a chunk of rows, rewritten chunk by chunk (`replica/stream.rs`).

use crate::data::{Dataset, Features};
use crate::error::{Error, Result};
use crate::gpu::kernels::pack_pixels;
use crate::gpu::Gpu;

/// The features of a resident data set, in the form the data set holds them.
pub(crate) enum DeviceFeatures {
    /// u8 pixels packed four to a u32, `words` u32 per row.
    Pixels { buffer: wgpu::Buffer, words: usize },
    /// f32 values, `features` per row.
    Values { buffer: wgpu::Buffer },
}

/// Features and labels of one data set on one device.
pub struct DeviceDataset {
    pub(crate) features_data: DeviceFeatures,
    /// u32 labels `[rows]`; zeros for a values set, so that the feature gathers' label copy
    /// reads in bounds.
    pub(crate) labels: wgpu::Buffer,
    /// f32 targets `[rows, outputs]` (regression values or multi-hot rows, `Dataset::values`)
    /// and `outputs`; `None` for class labels.
    pub(crate) targets: Option<(wgpu::Buffer, usize)>,
    pub(crate) features: usize,
    pub(crate) len: usize,
}

impl DeviceDataset {
    /// Uploads `data` to `gpu`: pixels packed (no conversion to f32 on the host), values as
    /// they are.
    pub fn upload(gpu: &Gpu, data: &Dataset) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::Data("cannot upload an empty dataset".into()));
        }
        let empty = wgpu::BufferUsages::empty();
        let features_data = match host_features(data) {
            HostFeatures::Packed(packed, words) => {
                DeviceFeatures::Pixels { buffer: gpu.upload("dataset pixels", &packed, empty)?, words }
            }
            HostFeatures::Values(values) => {
                DeviceFeatures::Values { buffer: gpu.upload("dataset features", values, empty)? }
            }
        };
        let labels = gpu.upload("dataset labels", &host_labels(data), empty)?;
        let targets = match data.values() {
            None => None,
            Some((values, outputs)) => Some((gpu.upload("dataset targets", values, empty)?, outputs)),
        };
        Ok(DeviceDataset { features_data, labels, targets, features: data.features(), len: data.len() })
    }

    /// Buffers for `rows` rows laid out as `like`'s, left zero: a chunk slot that
    /// [`DeviceDataset::write_rows`] fills (streamed data sets).
    pub(crate) fn with_capacity(gpu: &Gpu, like: &Dataset, rows: usize) -> Result<Self> {
        let usage = wgpu::BufferUsages::COPY_DST;
        let features_data = match like.feature_data() {
            Features::Pixels(_) => {
                let words = like.features().div_ceil(4);
                let buffer = gpu.storage_buffer("chunk pixels", (rows * words * 4) as u64, usage)?;
                DeviceFeatures::Pixels { buffer, words }
            }
            Features::Values(_) => DeviceFeatures::Values {
                buffer: gpu.storage_buffer("chunk features", (rows * like.features() * 4) as u64, usage)?,
            },
        };
        let labels = gpu.storage_buffer("chunk labels", (rows * 4) as u64, usage)?;
        let targets = match like.values() {
            None => None,
            Some((_, outputs)) => {
                Some((gpu.storage_buffer("chunk targets", (rows * outputs * 4) as u64, usage)?, outputs))
            }
        };
        Ok(DeviceDataset { features_data, labels, targets, features: like.features(), len: rows })
    }

    /// Queues writes of `chunk`'s rows (at most this set's rows, laid out alike) to the start
    /// of its buffers; rows past the chunk keep what they held.
    pub(crate) fn write_rows(&self, gpu: &Gpu, chunk: &Dataset) -> Result<()> {
        if chunk.len() > self.len || chunk.features() != self.features {
            return Err(Error::Shape(format!(
                "a chunk of {} rows of {} features into a slot of {} rows of {}",
                chunk.len(),
                chunk.features(),
                self.len,
                self.features
            )));
        }
        match (&self.features_data, host_features(chunk)) {
            (DeviceFeatures::Pixels { buffer, .. }, HostFeatures::Packed(packed, _)) => {
                gpu.write(buffer, 0, bytemuck::cast_slice(&packed))
            }
            (DeviceFeatures::Values { buffer }, HostFeatures::Values(values)) => {
                gpu.write(buffer, 0, bytemuck::cast_slice(values))
            }
            _ => return Err(Error::Shape("a chunk of pixels into a slot of values, or back".into())),
        }
        gpu.write(&self.labels, 0, bytemuck::cast_slice(&host_labels(chunk)));
        match (&self.targets, chunk.values()) {
            (Some((buffer, outputs)), Some((values, n))) if *outputs == n => {
                gpu.write(buffer, 0, bytemuck::cast_slice(values))
            }
            (None, None) => {}
            _ => return Err(Error::Shape("a chunk's targets differ from its slot's".into())),
        }
        Ok(())
    }

    /// Bytes one row of `data` takes in each buffer on the device: features, label, targets.
    pub(crate) fn row_bytes(data: &Dataset) -> [u64; 3] {
        let features = match data.feature_data() {
            Features::Pixels(_) => data.features().div_ceil(4) * 4,
            Features::Values(_) => data.features() * 4,
        };
        [features as u64, 4, data.values().map_or(0, |(_, outputs)| outputs as u64 * 4)]
    }

    /// Whether each of the buffers [`DeviceDataset::upload`] would create for `data` fits
    /// one storage binding and one buffer of `gpu`.
    pub(crate) fn fits(gpu: &Gpu, data: &Dataset) -> bool {
        let rows = data.len() as u64;
        DeviceDataset::row_bytes(data).iter().all(|&per_row| fits_buffer(gpu, rows.saturating_mul(per_row)))
    }
}

/// Whether a storage buffer of `bytes` fits one binding and one buffer of `gpu`.
pub(crate) fn fits_buffer(gpu: &Gpu, bytes: u64) -> bool {
    let limits = gpu.device.limits();
    bytes <= limits.max_storage_buffer_binding_size && bytes <= limits.max_buffer_size
}

/// Features as the device holds them.
enum HostFeatures<'a> {
    /// Pixels packed four to a u32, `words` per row.
    Packed(Vec<u32>, usize),
    Values(&'a [f32]),
}

fn host_features(data: &Dataset) -> HostFeatures<'_> {
    match data.feature_data() {
        Features::Pixels(pixels) => {
            let (packed, words) = pack_pixels(pixels, data.features());
            HostFeatures::Packed(packed, words)
        }
        Features::Values(values) => HostFeatures::Values(values),
    }
}

/// The labels, or zeros for a values set (so that the feature gathers' label copy reads in
/// bounds).
fn host_labels(data: &Dataset) -> std::borrow::Cow<'_, [u32]> {
    match data.values() {
        None => data.labels().into(),
        Some(_) => vec![0u32; data.len()].into(),
    }
}

/// An ordered list of image indices on the device (a shuffled epoch, or a fixed subset).
pub struct DeviceIndices {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) len: usize,
}

impl DeviceIndices {
    /// Uploads `indices`, all of which must be < `limit`.
    pub fn upload(gpu: &Gpu, indices: &[u32], limit: usize) -> Result<Self> {
        if indices.is_empty() {
            return Err(Error::Data("an empty index list".into()));
        }
        if let Some(bad) = indices.iter().find(|&&i| i as usize >= limit) {
            return Err(Error::Data(format!("index {bad} is past the dataset's {limit} images")));
        }
        let buffer = gpu.upload("indices", indices, wgpu::BufferUsages::empty())?;
        Ok(DeviceIndices { buffer, len: indices.len() })
    }

    /// Replaces the order (same length), queued before the next submission.
    pub fn rewrite(&self, gpu: &Gpu, indices: &[u32]) -> Result<()> {
        if indices.len() != self.len {
            return Err(Error::Shape(format!("index list of {} where {} expected", indices.len(), self.len)));
        }
        gpu.write(&self.buffer, 0, bytemuck::cast_slice(indices));
        Ok(())
    }
}
