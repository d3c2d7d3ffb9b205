//! Host side of `shaders/mse.wgsl`: the mean squared error with its gradient, the loss sum
//! and the per-output sums of its metrics accumulated into a device-resident metrics buffer.

use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::cpu::MSE_SUMS;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    outputs: u32,
    pred_off: u32,
    dpred_off: u32,
    y_off: u32,
    metrics_off: u32,
    write_grad: u32,
    scale: f32,
}

/// Floats of one pass's slot in the metrics buffer: the loss sum, then the
/// [`MSE_SUMS`] per-output sums (`crate::cpu::mse_into`'s layout).
pub fn mse_slot_len(outputs: usize) -> usize {
    1 + MSE_SUMS * outputs
}

/// One mean squared error launch.
#[derive(Debug, Clone, Copy)]
pub struct MseCall<'a> {
    /// Rows in the batch.
    pub rows: usize,
    /// Values per row.
    pub outputs: usize,
    /// Predictions `[rows, outputs]` and their offset in floats.
    pub pred: (&'a wgpu::Buffer, usize),
    /// f32 targets `[rows, outputs]`.
    pub y: (&'a wgpu::Buffer, usize),
    /// Where to write `2 (pred - y) * scale`; `None` for evaluation.
    pub dpred: Option<(&'a wgpu::Buffer, usize)>,
    /// Gradient scale: `1 / (global batch * outputs)`.
    pub scale: f32,
    /// `metrics[slot..slot + mse_slot_len(outputs)] +=` the loss sum and the per-output sums.
    pub metrics: (&'a wgpu::Buffer, usize),
}

/// The mean squared error pipeline of one device, built on first use.
pub struct Mse {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl Mse {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "mse", &[Uniform, Read, Read, ReadWrite, ReadWrite])?;
        let pipeline = LazyPipeline::new("mse.wgsl", "mse", &layout);
        Ok(Mse { layout, pipeline })
    }

    /// Records one launch; checks the shapes against the buffers.
    pub fn record(&self, gpu: &Gpu, call: &MseCall<'_>) -> Result<Dispatch> {
        let MseCall { rows, outputs, .. } = *call;
        if rows == 0 || outputs == 0 {
            return Err(Error::Shape(format!(
                "mean squared error needs rows > 0 and outputs > 0, got {rows}x{outputs}"
            )));
        }
        let n = rows * outputs;
        let mut need = vec![(call.pred, n), (call.y, n), (call.metrics, mse_slot_len(outputs))];
        if let Some(d) = call.dpred {
            need.push((d, n));
        }
        for (operand, len) in need {
            pipeline::check_fits("mean squared error", operand, len)?;
        }
        let params = Params {
            rows: u32_of("rows", rows)?,
            outputs: u32_of("outputs", outputs)?,
            pred_off: u32_of("offset", call.pred.1)?,
            dpred_off: u32_of("offset", call.dpred.map_or(0, |d| d.1))?,
            y_off: u32_of("offset", call.y.1)?,
            metrics_off: u32_of("offset", call.metrics.1)?,
            write_grad: call.dpred.is_some() as u32,
            scale: call.scale,
        };
        let uniform = pipeline::uniform(gpu, "mse", &params)?;
        // Evaluation writes no gradient; the metrics buffer stands in for the unused binding.
        let dp = call.dpred.map_or(call.metrics.0, |d| d.0);
        let bind = bind_group(
            gpu,
            "mse",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Whole(call.pred.0),
                Bind::Whole(call.y.0),
                Bind::Whole(dp),
                Bind::Whole(call.metrics.0),
            ],
        )?;
        Ok(Dispatch::new("mse", self.pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}
