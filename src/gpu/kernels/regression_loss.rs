//! Host side of `shaders/regression_loss.wgsl`: the mean squared error, the mean absolute
//! error and Huber's loss with their gradients, the loss sum and the per-output sums of their
//! metrics accumulated into a device-resident metrics buffer.

use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
pub use crate::cpu::RegressionKind;
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
    kind: u32,
    delta: f32,
    pad: [u32; 2],
}

/// Floats of one pass's slot in the metrics buffer: the loss sum, then the
/// [`MSE_SUMS`] per-output sums (`crate::cpu::regression_into`'s layout).
pub fn regression_slot_len(outputs: usize) -> usize {
    1 + MSE_SUMS * outputs
}

/// One regression loss launch.
#[derive(Debug, Clone, Copy)]
pub struct RegressionCall<'a> {
    /// Which loss.
    pub kind: RegressionKind,
    /// Rows in the batch.
    pub rows: usize,
    /// Values per row.
    pub outputs: usize,
    /// Predictions `[rows, outputs]` and their offset in floats.
    pub pred: (&'a wgpu::Buffer, usize),
    /// f32 targets `[rows, outputs]`.
    pub y: (&'a wgpu::Buffer, usize),
    /// Where to write `loss'(pred - y) * scale`; `None` for evaluation.
    pub dpred: Option<(&'a wgpu::Buffer, usize)>,
    /// Gradient scale: `1 / (global batch * outputs)`.
    pub scale: f32,
    /// `metrics[slot..slot + regression_slot_len(outputs)] +=` the loss sum and the
    /// per-output sums.
    pub metrics: (&'a wgpu::Buffer, usize),
}

/// The regression loss pipeline of one device, every kind, built on first use.
pub struct RegressionLoss {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl RegressionLoss {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "regression_loss", &[Uniform, Read, Read, ReadWrite, ReadWrite])?;
        let pipeline = LazyPipeline::new("regression_loss.wgsl", "regression_loss", &layout);
        Ok(RegressionLoss { layout, pipeline })
    }

    /// Records one launch; checks the shapes against the buffers and Huber's delta.
    pub fn record(&self, gpu: &Gpu, call: &RegressionCall<'_>) -> Result<Dispatch> {
        let RegressionCall { rows, outputs, .. } = *call;
        if rows == 0 || outputs == 0 {
            return Err(Error::Shape(format!(
                "a regression loss needs rows > 0 and outputs > 0, got {rows}x{outputs}"
            )));
        }
        call.kind.check()?;
        // The shader's KIND_* constants.
        let (kind, delta) = match call.kind {
            RegressionKind::Mse => (0, 0.0),
            RegressionKind::Mae => (1, 0.0),
            RegressionKind::Huber(delta) => (2, delta),
        };
        let n = rows * outputs;
        let mut need = vec![(call.pred, n), (call.y, n), (call.metrics, regression_slot_len(outputs))];
        if let Some(d) = call.dpred {
            need.push((d, n));
        }
        for (operand, len) in need {
            pipeline::check_fits("regression loss", operand, len)?;
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
            kind,
            delta,
            pad: [0; 2],
        };
        let uniform = pipeline::uniform(gpu, "regression_loss", &params)?;
        // Evaluation writes no gradient; the metrics buffer stands in for the unused binding.
        let dp = call.dpred.map_or(call.metrics.0, |d| d.0);
        let bind = bind_group(
            gpu,
            "regression_loss",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Whole(call.pred.0),
                Bind::Whole(call.y.0),
                Bind::Whole(dp),
                Bind::Whole(call.metrics.0),
            ],
        )?;
        Ok(Dispatch::new("regression_loss", self.pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}
