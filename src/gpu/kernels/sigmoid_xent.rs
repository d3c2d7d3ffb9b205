//! Host side of `shaders/sigmoid_xent.wgsl`: the sigmoid cross-entropy (binary and
//! multi-label) with its gradient, the loss sum and the count of outputs predicted right
//! accumulated into a device-resident metrics buffer.

use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    outputs: u32,
    logits_off: u32,
    dlogits_off: u32,
    y_off: u32,
    metrics_off: u32,
    write_grad: u32,
    scale: f32,
    from_labels: u32,
    pad: [u32; 3],
}

/// Floats of one pass's slot in the metrics buffer: the loss sum and the right-output count.
pub const SIGMOID_SLOT_LEN: usize = 2;

/// Where a sigmoid cross-entropy launch reads its 0/1 targets.
#[derive(Debug, Clone, Copy)]
pub enum SigmoidTargets<'a> {
    /// f32 targets `[rows, outputs]`, each 0.0 or 1.0 (multi-hot rows), and their offset.
    Values(&'a wgpu::Buffer, usize),
    /// u32 labels `[rows]`, each 0 or 1, for one output (binary classes), and their offset.
    Labels(&'a wgpu::Buffer, usize),
}

/// One sigmoid cross-entropy launch.
#[derive(Debug, Clone, Copy)]
pub struct SigmoidXentCall<'a> {
    /// Rows in the batch.
    pub rows: usize,
    /// Logits per row (1 with [`SigmoidTargets::Labels`]).
    pub outputs: usize,
    /// Logits `[rows, outputs]` and their offset in floats.
    pub logits: (&'a wgpu::Buffer, usize),
    /// The targets.
    pub targets: SigmoidTargets<'a>,
    /// Where to write `(sigmoid(z) - y) * scale`; `None` for evaluation.
    pub dlogits: Option<(&'a wgpu::Buffer, usize)>,
    /// Gradient scale: `1 / (global batch * outputs)`.
    pub scale: f32,
    /// `metrics[slot] += loss sum`, `metrics[slot + 1] += right outputs`.
    pub metrics: (&'a wgpu::Buffer, usize),
}

/// The sigmoid cross-entropy pipeline of one device, built on first use.
pub struct SigmoidXent {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl SigmoidXent {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout =
            bind_group_layout(gpu, "sigmoid_xent", &[Uniform, Read, Read, Read, ReadWrite, ReadWrite])?;
        let pipeline = LazyPipeline::new("sigmoid_xent.wgsl", "sigmoid_xent", &layout);
        Ok(SigmoidXent { layout, pipeline })
    }

    /// Records one launch; checks the shapes against the buffers.
    pub fn record(&self, gpu: &Gpu, call: &SigmoidXentCall<'_>) -> Result<Dispatch> {
        let SigmoidXentCall { rows, outputs, .. } = *call;
        if rows == 0 || outputs == 0 {
            return Err(Error::Shape(format!(
                "sigmoid cross-entropy needs rows > 0 and outputs > 0, got {rows}x{outputs}"
            )));
        }
        let n = rows * outputs;
        let (targets, from_labels) = match call.targets {
            SigmoidTargets::Values(b, off) => ((b, off), false),
            SigmoidTargets::Labels(b, off) if outputs == 1 => ((b, off), true),
            SigmoidTargets::Labels(..) => {
                return Err(Error::Shape(format!(
                    "sigmoid cross-entropy on labels needs one output (binary), got {outputs}"
                )))
            }
        };
        let mut need = vec![(call.logits, n), (targets, n), (call.metrics, SIGMOID_SLOT_LEN)];
        if let Some(d) = call.dlogits {
            need.push((d, n));
        }
        for (operand, len) in need {
            pipeline::check_fits("sigmoid cross-entropy", operand, len)?;
        }
        let params = Params {
            rows: u32_of("rows", rows)?,
            outputs: u32_of("outputs", outputs)?,
            logits_off: u32_of("offset", call.logits.1)?,
            dlogits_off: u32_of("offset", call.dlogits.map_or(0, |d| d.1))?,
            y_off: u32_of("offset", targets.1)?,
            metrics_off: u32_of("offset", call.metrics.1)?,
            write_grad: call.dlogits.is_some() as u32,
            scale: call.scale,
            from_labels: from_labels as u32,
            pad: [0; 3],
        };
        let uniform = pipeline::uniform(gpu, "sigmoid_xent", &params)?;
        // The unused target binding reads the logits (read-only too, so no usage conflict);
        // evaluation writes no gradient, and the metrics buffer stands in for that binding.
        let (y, labels) = if from_labels { (call.logits.0, targets.0) } else { (targets.0, call.logits.0) };
        let dl = call.dlogits.map_or(call.metrics.0, |d| d.0);
        let bind = bind_group(
            gpu,
            "sigmoid_xent",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Whole(call.logits.0),
                Bind::Whole(y),
                Bind::Whole(labels),
                Bind::Whole(dl),
                Bind::Whole(call.metrics.0),
            ],
        )?;
        Ok(Dispatch::new("sigmoid_xent", self.pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}
