//! A dataset resident on one device: its features (u8 pixels packed four to a u32, a quarter
//! of the f32 size, so the 47 MB MNIST training set fits one storage binding where its 188 MB
//! f32 form would not; or f32 values as given), u32 labels, and an index buffer saying which
//! rows, in which order, a pass visits. Uploaded once; per epoch only the index order is
//! rewritten.

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
        let features_data = match data.feature_data() {
            Features::Pixels(pixels) => {
                let (packed, words) = pack_pixels(pixels, data.features());
                DeviceFeatures::Pixels {
                    buffer: gpu.upload("dataset pixels", &packed, wgpu::BufferUsages::empty())?,
                    words,
                }
            }
            Features::Values(values) => DeviceFeatures::Values {
                buffer: gpu.upload("dataset features", values, wgpu::BufferUsages::empty())?,
            },
        };
        let (labels, targets) = match data.values() {
            None => (gpu.upload("dataset labels", data.labels(), wgpu::BufferUsages::empty())?, None),
            Some((values, outputs)) => (
                gpu.upload("dataset labels", &vec![0u32; data.len()], wgpu::BufferUsages::empty())?,
                Some((gpu.upload("dataset targets", values, wgpu::BufferUsages::empty())?, outputs)),
            ),
        };
        Ok(DeviceDataset { features_data, labels, targets, features: data.features(), len: data.len() })
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
