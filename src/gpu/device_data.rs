//! A dataset resident on one device: u8 pixels packed four to a u32 (a quarter of the f32
//! size, so the 47 MB MNIST training set fits one storage binding where its 188 MB f32 form
//! would not), u32 labels, and an index buffer saying which images, in which order, a pass
//! visits. Uploaded once; per epoch only the index order is rewritten.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::kernels::pack_pixels;
use crate::gpu::Gpu;

/// Pixels and labels of one dataset on one device.
pub struct DeviceDataset {
    pub(crate) pixels: wgpu::Buffer,
    pub(crate) labels: wgpu::Buffer,
    pub(crate) words: usize,
    pub(crate) features: usize,
    pub(crate) len: usize,
}

impl DeviceDataset {
    /// Uploads `data` to `gpu` (one copy, no conversion to f32 on the host).
    pub fn upload(gpu: &Gpu, data: &Dataset) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::Data("cannot upload an empty dataset".into()));
        }
        let (packed, words) = pack_pixels(&data.pixels, data.features);
        let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
        Ok(DeviceDataset {
            pixels: gpu.upload("dataset pixels", &packed, wgpu::BufferUsages::empty())?,
            labels: gpu.upload("dataset labels", &labels, wgpu::BufferUsages::empty())?,
            words,
            features: data.features,
            len: data.len(),
        })
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
