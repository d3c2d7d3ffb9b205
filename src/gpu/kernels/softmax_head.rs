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
//!
//! Training can go on in the same launch to the layer's backward (`softmax_head_train`,
//! `shaders/softmax_head_backward.wgsl`: dW, db and the input gradient with the layer below's
//! activation derivative), with the same bits as the weight-gradient and input-gradient
//! launches it replaces, when the device binds nine storage buffers to a stage (the default
//! limit is eight) and [`head_backward_fits`] takes the shape.

use super::pipeline::{
    self, bind_group, bind_group_layout, check_fits, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::spec::Activation;

/// Invocations of the head's one workgroup (`WG` in the shader), which takes the rows in
/// chunks of as many.
const WG: usize = 256;
/// The widest output the head takes.
pub const HEAD_MAX_CLASSES: usize = 32;
/// Blocks of 4x4 logits one invocation may compute.
const HEAD_MAX_BLOCKS: usize = 2;
/// Blocks of 4x4 gradients (dW's, then dX's) one invocation may compute in the backward.
const HEAD_MAX_BACKWARD_BLOCKS: usize = 8;
/// Storage buffers `softmax_head_train` binds to its stage.
const TRAIN_STORAGE_BINDINGS: u32 = 9;

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

/// Whether the backward of a `rows x classes` head over `k` inputs runs in the head's launch:
/// at most [`HEAD_MAX_BACKWARD_BLOCKS`] blocks of 4x4 gradients per invocation, counting dW's
/// `k x classes` and, when `dx`, the input gradient's `rows x k` (MNIST's 128 x 10 over 64:
/// one and two).
pub fn head_backward_fits(rows: usize, classes: usize, k: usize, dx: bool) -> bool {
    let per = |a: usize, b: usize| (a.div_ceil(4) * b.div_ceil(4)).div_ceil(WG);
    head_fits(rows, classes)
        && k > 0
        && per(k, classes) + if dx { per(rows, k) } else { 0 } <= HEAD_MAX_BACKWARD_BLOCKS
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
    dw_off: u32,
    db_off: u32,
    dx_off: u32,
    z_off: u32,
    has_dx: u32,
    act: u32,
    pad: [u32; 2],
}

/// The layer's backward in the head's launch: `dW = h^T dlogits` into `grads` at `dw`,
/// `db` = column sums of dlogits at `db`, and optionally the input gradient.
#[derive(Debug, Clone, Copy)]
pub struct HeadBackward<'a> {
    /// The flat gradients.
    pub grads: &'a wgpu::Buffer,
    /// Offset of dW `[k, classes]` in `grads`.
    pub dw: usize,
    /// Offset of db `[classes]` in `grads`.
    pub db: usize,
    /// `dx = (dlogits W^T) * act'(z)`: `[rows, k]`, for the layer below.
    pub dx: Option<HeadInputGrad<'a>>,
}

/// Where the head's input gradient goes and the activation derivative it is multiplied by.
#[derive(Debug, Clone, Copy)]
pub struct HeadInputGrad<'a> {
    /// `[rows, k]` out.
    pub dx: (&'a wgpu::Buffer, usize),
    /// The layer below's activation.
    pub activation: Activation,
    /// What its derivative reads, `[rows, k]` (the pre-activation, or the output for the identity).
    pub z: (&'a wgpu::Buffer, usize),
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
    /// The layer's backward in the same launch (needs `dlogits`); `None`: separate launches.
    pub backward: Option<HeadBackward<'a>>,
}

/// The fused softmax head pipeline of one device.
pub struct SoftmaxHead {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
    /// `softmax_head_train`'s; `None` where the device binds fewer than nine storage buffers.
    train: Option<(wgpu::BindGroupLayout, LazyPipeline)>,
}

impl SoftmaxHead {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let slots = [Uniform, Read, Read, ReadWrite, Read, ReadWrite, ReadWrite];
        let layout = bind_group_layout(gpu, "softmax_head", &slots)?;
        let pipeline = LazyPipeline::new("softmax_head.wgsl", "softmax_head", &layout);
        let train = if gpu.device.limits().max_storage_buffers_per_shader_stage >= TRAIN_STORAGE_BINDINGS {
            let slots = [&slots[..], &[ReadWrite, Read, ReadWrite]].concat();
            let layout = bind_group_layout(gpu, "softmax_head_train", &slots)?;
            let pipeline = LazyPipeline::new("softmax_head.wgsl", "softmax_head_train", &layout);
            Some((layout, pipeline))
        } else {
            None
        };
        Ok(SoftmaxHead { layout, pipeline, train })
    }

    /// Whether this device runs the layer's backward in the head's launch (it binds nine
    /// storage buffers to a stage).
    pub fn backward_supported(&self) -> bool {
        self.train.is_some()
    }

    /// Records one launch; checks the shape against [`head_fits`] (and
    /// [`head_backward_fits`] with the device's support for a backward) and the buffers.
    pub fn record(&self, gpu: &Gpu, call: &HeadCall<'_>) -> Result<Dispatch> {
        check(call)?;
        let uniform = pipeline::uniform(gpu, "softmax_head", &params(call)?)?;
        // Evaluation writes no gradient; the metrics buffer stands in for the unused binding.
        let dl = call.dlogits.map_or(call.metrics.0, |d| d.0);
        let mut binds = vec![
            Bind::Whole(&uniform),
            Bind::Whole(call.h.0),
            Bind::Whole(call.params.0),
            Bind::Whole(call.logits.0),
            Bind::Whole(call.labels.0),
            Bind::Whole(dl),
            Bind::Whole(call.metrics.0),
        ];
        let (label, layout, pipeline) = match (call.backward, &self.train) {
            (None, _) => ("softmax_head", &self.layout, &self.pipeline),
            (Some(back), Some((layout, pipeline))) => {
                // Without an input gradient, the (read) parameters stand in for z and the
                // metrics for dx: bound, never read or written.
                let z = back.dx.map_or(call.params.0, |d| d.z.0);
                let dx = back.dx.map_or(call.metrics.0, |d| d.dx.0);
                binds.extend([Bind::Whole(back.grads), Bind::Whole(z), Bind::Whole(dx)]);
                ("softmax_head_train", layout, pipeline)
            }
            (Some(_), None) => {
                return Err(Error::Shape(format!(
                    "{} binds fewer than {TRAIN_STORAGE_BINDINGS} storage buffers to a stage: record \
                     the softmax head's backward as separate launches",
                    gpu.report.label()
                )))
            }
        };
        let bind = bind_group(gpu, label, layout, &binds)?;
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, [1, 1, 1]))
    }
}

/// The shape against [`head_fits`] (and [`head_backward_fits`]) and every operand against
/// its buffer.
fn check(call: &HeadCall<'_>) -> Result<()> {
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
    if let Some(back) = call.backward {
        if call.dlogits.is_none() || !head_backward_fits(rows, classes, k, back.dx.is_some()) {
            return Err(Error::Shape(format!(
                "the softmax head's backward takes a training pass (dlogits given) and at most \
                 {HEAD_MAX_BACKWARD_BLOCKS} blocks of 4x4 gradients per invocation; got \
                 {rows}x{classes} (k = {k}): record the backward apart"
            )));
        }
        check_fits("softmax head weight gradient", (back.grads, back.dw), k * classes)?;
        check_fits("softmax head bias gradient", (back.grads, back.db), classes)?;
        if let Some(d) = back.dx {
            check_fits("softmax head input gradient", d.dx, rows * k)?;
            check_fits("softmax head activation input", d.z, rows * k)?;
        }
    }
    Ok(())
}

/// The uniform of one launch.
fn params(call: &HeadCall<'_>) -> Result<Params> {
    let back = call.backward;
    let dx = back.and_then(|b| b.dx);
    Ok(Params {
        rows: u32_of("rows", call.rows)?,
        n: u32_of("classes", call.classes)?,
        k: u32_of("k", call.k)?,
        h_off: u32_of("offset", call.h.1)?,
        w_off: u32_of("offset", call.params.1)?,
        bias_off: u32_of("offset", call.bias)?,
        logits_off: u32_of("offset", call.logits.1)?,
        dlogits_off: u32_of("offset", call.dlogits.map_or(0, |d| d.1))?,
        labels_off: u32_of("offset", call.labels.1)?,
        metrics_off: u32_of("offset", call.metrics.1)?,
        write_grad: call.dlogits.is_some() as u32,
        scale: call.scale,
        dw_off: u32_of("offset", back.map_or(0, |b| b.dw))?,
        db_off: u32_of("offset", back.map_or(0, |b| b.db))?,
        dx_off: u32_of("offset", dx.map_or(0, |d| d.dx.1))?,
        z_off: u32_of("offset", dx.map_or(0, |d| d.z.1))?,
        has_dx: dx.is_some() as u32,
        act: dx.map_or(0, |d| d.activation.code()),
        pad: [0; 2],
    })
}
