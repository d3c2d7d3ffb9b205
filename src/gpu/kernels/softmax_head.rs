//! Host side of `shaders/softmax_head.wgsl`: the last dense layer's product and the softmax
//! cross-entropy in one launch, for a narrow output, with the same bits as the matmul (bias
//! epilogue) and `softmax_xent` launches it replaces.
//!
//! It is one workgroup, as `softmax_xent` is (its metrics sums need one), whose invocations
//! share the product in `mm_rb4x4`'s blocks of 4x4 logits: [`head_fits`] keeps it to shapes
//! where no invocation computes more than two blocks, so on a GPU its longest chain of
//! dependent adds is at most twice that of the `mm_rb4x4` launch it replaces (equal for
//! MNIST's batch of 128 x 10: 96 blocks, one each, as in `mm_rb4x4`), and it saves a launch
//! and the logits' round trip through memory.

use super::pipeline::{
    self, bind_group, bind_group_layout, check_fits, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Invocations of the head's one workgroup (`WG` in the shader), which takes the rows in
/// chunks of as many.
const WG: usize = 256;
/// The widest output the head takes.
pub const HEAD_MAX_CLASSES: usize = 32;
/// Blocks of 4x4 logits one invocation may compute.
const HEAD_MAX_BLOCKS: usize = 2;

/// Blocks of 4x4 logits the busiest invocation computes for `rows x classes`: in each chunk
/// of [`WG`] rows, invocation 0 takes blocks 0, WG, 2 WG, ....
fn blocks_per_invocation(rows: usize, classes: usize) -> usize {
    (0..rows).step_by(WG).map(|r0| ((rows - r0).min(WG).div_ceil(4) * classes.div_ceil(4)).div_ceil(WG)).sum()
}

/// Whether a `rows x classes` head runs fused: 2 to [`HEAD_MAX_CLASSES`] classes and at
/// most [`HEAD_MAX_BLOCKS`] blocks per invocation (10 classes: up to 512 rows; 32: 256).
pub fn head_fits(rows: usize, classes: usize) -> bool {
    (2..=HEAD_MAX_CLASSES).contains(&classes) && blocks_per_invocation(rows, classes) <= HEAD_MAX_BLOCKS
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    k: u32,
    h_off: u32,
    w_off: u32,
    bias_off: u32,
    logits_off: u32,
    dlogits_off: u32,
    labels_off: u32,
    metrics_off: u32,
    write_grad: u32,
    scale: f32,
}

/// One fused head launch. Shapes: `h [rows, k]`, `W [k, classes]` and `b [classes]` in
/// `params`, logits and dlogits `[rows, classes]`.
#[derive(Debug, Clone, Copy)]
pub struct HeadCall<'a> {
    /// Rows in the batch.
    pub rows: usize,
    /// Outputs of the layer (logits per row).
    pub classes: usize,
    /// Inputs of the layer (length of each dot product).
    pub k: usize,
    /// The layer's input `[rows, k]`.
    pub h: (&'a wgpu::Buffer, usize),
    /// The flat parameters holding `W` (at `.1`) and `b` (at `bias`).
    pub params: (&'a wgpu::Buffer, usize),
    /// Offset of `b` in `params`.
    pub bias: usize,
    /// Where the logits are written.
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

/// The fused softmax head pipeline of one device.
pub struct SoftmaxHead {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
}

impl SoftmaxHead {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let slots = [Uniform, Read, Read, ReadWrite, Read, ReadWrite, ReadWrite];
        let layout = bind_group_layout(gpu, "softmax_head", &slots)?;
        let pipeline = LazyPipeline::new("softmax_head.wgsl", "softmax_head", &layout);
        Ok(SoftmaxHead { layout, pipeline })
    }

    /// Records one launch; checks the shape against [`head_fits`] and the buffers.
    pub fn record(&self, gpu: &Gpu, call: &HeadCall<'_>) -> Result<Dispatch> {
        let HeadCall { rows, classes, k, .. } = *call;
        if rows == 0 || k == 0 || !head_fits(rows, classes) {
            return Err(Error::Shape(format!(
                "the fused softmax head takes rows > 0, k > 0, 2 <= classes <= {HEAD_MAX_CLASSES} and \
                 at most {HEAD_MAX_BLOCKS} blocks of 4x4 logits per invocation; got {rows}x{classes} \
                 (k = {k}): record the product and softmax_xent apart"
            )));
        }
        check_fits("softmax head input", call.h, rows * k)?;
        check_fits("softmax head weights", call.params, k * classes)?;
        check_fits("softmax head bias", (call.params.0, call.bias), classes)?;
        check_fits("softmax head logits", call.logits, rows * classes)?;
        check_fits("softmax head labels", call.labels, rows)?;
        check_fits("softmax head metrics", call.metrics, 2)?;
        if let Some(d) = call.dlogits {
            check_fits("softmax head dlogits", d, rows * classes)?;
        }
        let params = Params {
            rows: u32_of("rows", rows)?,
            n: u32_of("classes", classes)?,
            k: u32_of("k", k)?,
            h_off: u32_of("offset", call.h.1)?,
            w_off: u32_of("offset", call.params.1)?,
            bias_off: u32_of("offset", call.bias)?,
            logits_off: u32_of("offset", call.logits.1)?,
            dlogits_off: u32_of("offset", call.dlogits.map_or(0, |d| d.1))?,
            labels_off: u32_of("offset", call.labels.1)?,
            metrics_off: u32_of("offset", call.metrics.1)?,
            write_grad: call.dlogits.is_some() as u32,
            scale: call.scale,
        };
        let uniform = pipeline::uniform(gpu, "softmax_head", &params)?;
        // Evaluation writes no gradient; the metrics buffer stands in for the unused binding.
        let dl = call.dlogits.map_or(call.metrics.0, |d| d.0);
        let bind = bind_group(
            gpu,
            "softmax_head",
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Whole(call.h.0),
                Bind::Whole(call.params.0),
                Bind::Whole(call.logits.0),
                Bind::Whole(call.labels.0),
                Bind::Whole(dl),
                Bind::Whole(call.metrics.0),
            ],
        )?;
        Ok(Dispatch::new("softmax_head", self.pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}
