//! Host side of `shaders/gather_values.wgsl`: batches assembled on the device from a
//! resident table of f32 features and the epoch's row permutation (the f32 twin of the u8
//! pixel gather in `gather.rs`). The pipeline is built on first use, so devices that only ever
//! train on images never compile it.

use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Invocations per workgroup along the features (the shader's `WORKGROUP_X`); 4 rows per
/// workgroup along y.
const WORKGROUP_X: usize = 64;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    features: u32,
    unused: u32,
    x_off: u32,
}

/// The device-resident sources of an f32 gather.
#[derive(Debug, Clone, Copy)]
pub struct ValueSources<'a> {
    /// f32 features `[table rows, features]` row-major.
    pub values: &'a wgpu::Buffer,
    /// Features per row.
    pub features: usize,
    /// u32 label per table row.
    pub labels: &'a wgpu::Buffer,
    /// u32 table rows; row r of a batch is table row `perm[step.start + r]`.
    pub perm: &'a wgpu::Buffer,
    /// A [`super::GatherStep`].
    pub step: &'a wgpu::Buffer,
}

/// The f32 gather pipeline of one device, built on first use.
pub struct GatherValues {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl GatherValues {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(
            gpu,
            "gather values",
            &[Uniform, Uniform, Read, Read, Read, ReadWrite, ReadWrite],
        )?;
        let pipeline = LazyPipeline::new("gather_values.wgsl", "gather_values", &layout);
        Ok(GatherValues { layout, pipeline })
    }

    /// Records a gather of `rows` rows into `x[x_off..]` (f32) and `y` (u32).
    pub fn record(
        &self,
        gpu: &Gpu,
        rows: usize,
        src: &ValueSources<'_>,
        x: (&wgpu::Buffer, usize),
        y: &wgpu::Buffer,
    ) -> Result<Dispatch> {
        if rows == 0 || src.features == 0 {
            return Err(Error::Shape(format!("gather of {rows} rows with {} features", src.features)));
        }
        if (x.0.size() / 4) < (x.1 + rows * src.features) as u64 || (y.size() / 4) < rows as u64 {
            return Err(Error::Shape(format!("gather of {rows} rows does not fit its output buffers")));
        }
        let params = Params {
            rows: u32_of("rows", rows)?,
            features: u32_of("features", src.features)?,
            unused: 0,
            x_off: u32_of("offset", x.1)?,
        };
        let workgroups = [src.features.div_ceil(WORKGROUP_X) as u32, (rows as u32).div_ceil(4), 1];
        let max = gpu.device.limits().max_compute_workgroups_per_dimension;
        if workgroups[0] > max || workgroups[1] > max {
            return Err(Error::Shape(format!(
                "a gather of {rows} rows of {} features needs {}x{} workgroups, over the device's {max}: use smaller batches",
                src.features, workgroups[0], workgroups[1]
            )));
        }
        let pipeline = self.pipeline.get(gpu)?;
        let uniform = pipeline::uniform(gpu, "gather values", &params)?;
        let bind = bind_group(
            gpu,
            "gather values",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Range(src.step, 0, 16),
                Bind::Whole(src.values),
                Bind::Whole(src.labels),
                Bind::Whole(src.perm),
                Bind::Whole(x.0),
                Bind::Whole(y),
            ],
        )?;
        Ok(Dispatch::new("gather_values", pipeline, bind, workgroups))
    }
}
