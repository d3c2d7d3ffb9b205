//! Per-layer activation buffers of a replica, sized once for the largest pass.

use super::floats;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::spec::Network;

/// Per-layer activation buffers, sized for `rows` rows.
pub(super) struct Workspace {
    pub(super) rows: usize,
    /// Batch inputs [rows, inputs] and u32 labels [rows].
    pub(super) x: wgpu::Buffer,
    pub(super) y: wgpu::Buffer,
    /// f32 regression targets [rows, outputs].
    pub(super) yv: wgpu::Buffer,
    /// Pre-activation, activation and pre-activation gradient of each layer: [rows, outputs].
    pub(super) z: Vec<wgpu::Buffer>,
    pub(super) h: Vec<wgpu::Buffer>,
    pub(super) dz: Vec<wgpu::Buffer>,
}

impl Workspace {
    pub(super) fn new(gpu: &Gpu, spec: &Network, rows: usize) -> Result<Self> {
        let per_layer = |name: &str| -> Result<Vec<wgpu::Buffer>> {
            spec.widths()[1..].iter().map(|&out| floats(gpu, name, rows * out)).collect()
        };
        Ok(Workspace {
            rows,
            x: floats(gpu, "batch x", rows * spec.inputs())?,
            y: floats(gpu, "batch labels", rows)?,
            yv: floats(gpu, "batch targets", rows * spec.outputs())?,
            z: per_layer("pre-activation")?,
            h: per_layer("activation")?,
            dz: per_layer("pre-activation gradient")?,
        })
    }
}
