//! Host side of `shaders/robust_regression.wgsl`: the mean absolute error and Huber's loss
//! with their gradients, the loss sum and the per-output sums of their metrics (the mean
//! squared error's layout, [`mse_slot_len`]) accumulated into a device-resident metrics buffer.

use super::mse_slot_len;
use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::cpu::Robust;
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

/// One robust regression launch.
#[derive(Debug, Clone, Copy)]
pub struct RobustCall<'a> {
    /// Which loss: MAE or Huber with its delta.
    pub kind: Robust,
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
    /// `metrics[slot..slot + mse_slot_len(outputs)] +=` the loss sum and the per-output sums.
    pub metrics: (&'a wgpu::Buffer, usize),
}

/// The robust regression pipeline of one device, built on first use.
pub struct RobustRegression {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl RobustRegression {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout =
            bind_group_layout(gpu, "robust_regression", &[Uniform, Read, Read, ReadWrite, ReadWrite])?;
        let pipeline = LazyPipeline::new("robust_regression.wgsl", "robust_regression", &layout);
        Ok(RobustRegression { layout, pipeline })
    }

    /// Records one launch; checks the shapes against the buffers and Huber's delta.
    pub fn record(&self, gpu: &Gpu, call: &RobustCall<'_>) -> Result<Dispatch> {
        let RobustCall { rows, outputs, .. } = *call;
        if rows == 0 || outputs == 0 {
            return Err(Error::Shape(format!(
                "a regression loss needs rows > 0 and outputs > 0, got {rows}x{outputs}"
            )));
        }
        let (kind, delta) = match call.kind {
            Robust::Mae => (0, 0.0),
            Robust::Huber(delta) if delta.is_finite() && delta > 0.0 => (1, delta),
            Robust::Huber(delta) => {
                return Err(Error::Config(format!("Huber's delta must be finite and positive, got {delta}")))
            }
        };
        let n = rows * outputs;
        let mut need = vec![(call.pred, n), (call.y, n), (call.metrics, mse_slot_len(outputs))];
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
        let uniform = pipeline::uniform(gpu, "robust_regression", &params)?;
        // Evaluation writes no gradient; the metrics buffer stands in for the unused binding.
        let dp = call.dpred.map_or(call.metrics.0, |d| d.0);
        let bind = bind_group(
            gpu,
            "robust_regression",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Whole(call.pred.0),
                Bind::Whole(call.y.0),
                Bind::Whole(dp),
                Bind::Whole(call.metrics.0),
            ],
        )?;
        Ok(Dispatch::new("robust_regression", self.pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}
