//! Host side of `shaders/softmax_xent.wgsl`: fused softmax cross-entropy with the loss and
//! correct-count accumulated into a device-resident metrics buffer.

use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    classes: u32,
    logits_off: u32,
    dlogits_off: u32,
    labels_off: u32,
    metrics_off: u32,
    write_grad: u32,
    scale: f32,
}

/// One softmax cross-entropy launch.
#[derive(Debug, Clone, Copy)]
pub struct XentCall<'a> {
    /// Rows in the batch.
    pub rows: usize,
    /// Logits per row.
    pub classes: usize,
    /// Logits `[rows, classes]` and their offset in floats.
    pub logits: (&'a wgpu::Buffer, usize),
    /// u32 labels.
    pub labels: (&'a wgpu::Buffer, usize),
    /// Where to write `(softmax - onehot) * scale`; `None` for evaluation.
    pub dlogits: Option<(&'a wgpu::Buffer, usize)>,
    /// Gradient scale: `1 / global batch`.
    pub scale: f32,
    /// `metrics[slot] += loss sum`, `metrics[slot + 1] += correct count`.
    pub metrics: (&'a wgpu::Buffer, usize),
}

/// The softmax cross-entropy pipeline of one device.
pub struct SoftmaxXent {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl SoftmaxXent {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "softmax_xent", &[Uniform, Read, Read, ReadWrite, ReadWrite])?;
        let pipeline = LazyPipeline::new("softmax_xent.wgsl", "softmax_xent", &layout);
        Ok(SoftmaxXent { layout, pipeline })
    }

    /// Records one launch; checks the shapes against the buffers.
    pub fn record(&self, gpu: &Gpu, call: &XentCall<'_>) -> Result<Dispatch> {
        let XentCall { rows, classes, .. } = *call;
        if rows == 0 || classes < 2 {
            return Err(Error::Shape(format!(
                "softmax cross-entropy needs rows > 0 and classes >= 2, got {rows}x{classes}"
            )));
        }
        let mut need = vec![(call.logits, rows * classes), (call.labels, rows), (call.metrics, 2)];
        if let Some(d) = call.dlogits {
            need.push((d, rows * classes));
        }
        for (operand, len) in need {
            pipeline::check_fits("softmax cross-entropy", operand, len)?;
        }
        let params = Params {
            rows: u32_of("rows", rows)?,
            classes: u32_of("classes", classes)?,
            logits_off: u32_of("offset", call.logits.1)?,
            dlogits_off: u32_of("offset", call.dlogits.map_or(0, |d| d.1))?,
            labels_off: u32_of("offset", call.labels.1)?,
            metrics_off: u32_of("offset", call.metrics.1)?,
            write_grad: call.dlogits.is_some() as u32,
            scale: call.scale,
        };
        let uniform = pipeline::uniform(gpu, "softmax_xent", &params)?;
        // Evaluation writes no gradient; the metrics buffer stands in for the unused binding.
        let dl = call.dlogits.map_or(call.metrics.0, |d| d.0);
        let bind = bind_group(
            gpu,
            "softmax_xent",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Whole(call.logits.0),
                Bind::Whole(call.labels.0),
                Bind::Whole(dl),
                Bind::Whole(call.metrics.0),
            ],
        )?;
        Ok(Dispatch::new("softmax_xent", self.pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}
