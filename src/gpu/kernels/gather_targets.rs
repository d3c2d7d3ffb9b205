//! Host side of `shaders/gather_targets.wgsl`: a batch's f32 regression targets gathered on
//! the device from the resident targets and the epoch's row permutation, beside the features'
//! gather. Built on first use, so classifiers never compile it.

use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Invocations per workgroup (the shader's `WORKGROUP_X`).
const WORKGROUP_X: usize = 64;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    outputs: u32,
    pad: [u32; 2],
}

/// The device-resident sources of a target gather.
#[derive(Debug, Clone, Copy)]
pub struct TargetSources<'a> {
    /// f32 targets `[table rows, outputs]` row-major.
    pub targets: &'a wgpu::Buffer,
    /// Values per row.
    pub outputs: usize,
    /// u32 table rows; row r of a batch is table row `perm[step.start + r]`.
    pub perm: &'a wgpu::Buffer,
    /// A [`super::GatherStep`].
    pub step: &'a wgpu::Buffer,
}

/// The target gather pipeline of one device, built on first use.
pub struct GatherTargets {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl GatherTargets {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "gather targets", &[Uniform, Uniform, Read, Read, ReadWrite])?;
        let pipeline = LazyPipeline::new("gather_targets.wgsl", "gather_targets", &layout);
        Ok(GatherTargets { layout, pipeline })
    }

    /// Records a gather of `rows` rows of targets into `y: [rows, outputs]` (f32).
    pub fn record(
        &self,
        gpu: &Gpu,
        rows: usize,
        src: &TargetSources<'_>,
        y: &wgpu::Buffer,
    ) -> Result<Dispatch> {
        let n = rows.saturating_mul(src.outputs);
        if rows == 0 || src.outputs == 0 {
            return Err(Error::Shape(format!("gather of {rows} rows with {} targets", src.outputs)));
        }
        if (y.size() / 4) < n as u64 {
            return Err(Error::Shape(format!(
                "a target gather of {rows} rows does not fit its output buffer"
            )));
        }
        let workgroups = n.div_ceil(WORKGROUP_X);
        let max = gpu.device.limits().max_compute_workgroups_per_dimension as usize;
        if workgroups > max {
            return Err(Error::Shape(format!(
                "a target gather of {n} values needs {workgroups} workgroups, over the device's {max}: use smaller batches"
            )));
        }
        let params =
            Params { rows: u32_of("rows", rows)?, outputs: u32_of("outputs", src.outputs)?, pad: [0; 2] };
        let pipeline = self.pipeline.get(gpu)?;
        let uniform = pipeline::uniform(gpu, "gather targets", &params)?;
        let bind = bind_group(
            gpu,
            "gather targets",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Range(src.step, 0, 16),
                Bind::Whole(src.targets),
                Bind::Whole(src.perm),
                Bind::Whole(y),
            ],
        )?;
        Ok(Dispatch::new("gather_targets", pipeline, bind, [workgroups as u32, 1, 1]))
    }
}
