//! Host side of `shaders/optim.wgsl` and `shaders/optim_vec4.wgsl`: one dispatch updates
//! every parameter of the flat buffer, four per invocation when the length allows.

use super::pipeline::{
    self, bind_group, bind_group_layout, grid_1d, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::spec::{Optimizer, StepScalars};

/// The step scalars as the shader reads them (32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepUniform {
    /// Learning rate.
    pub lr: f32,
    /// Adam's beta1, or SGD's momentum.
    pub beta1: f32,
    /// Adam's beta2.
    pub beta2: f32,
    /// Adam's epsilon.
    pub eps: f32,
    /// `1 / (1 - beta1^t)`, computed in f64 on the host.
    pub inv_bias1: f32,
    /// `1 / (1 - beta2^t)`, computed in f64 on the host.
    pub inv_bias2: f32,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f32,
    /// Uniform padding to 32 bytes.
    pub pad: f32,
}

impl From<StepScalars> for StepUniform {
    fn from(s: StepScalars) -> Self {
        StepUniform {
            lr: s.lr,
            beta1: s.beta1,
            beta2: s.beta2,
            eps: s.eps,
            inv_bias1: s.inv_bias1,
            inv_bias2: s.inv_bias2,
            weight_decay: s.weight_decay,
            pad: 0.0,
        }
    }
}

/// The flat buffers one update touches.
#[derive(Debug, Clone, Copy)]
pub struct OptimBuffers<'a> {
    /// Flat parameters (updated).
    pub params: &'a wgpu::Buffer,
    /// Flat gradients of the mean loss.
    pub grads: &'a wgpu::Buffer,
    /// Adam's first moment, or SGD's momentum buffer.
    pub m: &'a wgpu::Buffer,
    /// Adam's second moment (unused by SGD, still bound).
    pub v: &'a wgpu::Buffer,
    /// A [`StepUniform`], rewritten on the device before each step.
    pub step: &'a wgpu::Buffer,
}

/// The optimizer pipelines of one device.
pub struct Optim {
    layout: wgpu::BindGroupLayout,
    adam: LazyPipeline,
    sgd: LazyPipeline,
    /// Four parameters per invocation, used when the length is a multiple of 4.
    adam4: LazyPipeline,
    sgd4: LazyPipeline,
}

impl Optim {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout =
            bind_group_layout(gpu, "optim", &[Uniform, Uniform, ReadWrite, Read, ReadWrite, ReadWrite])?;
        Ok(Optim {
            adam: LazyPipeline::new("optim.wgsl", "adam", &layout),
            sgd: LazyPipeline::new("optim.wgsl", "sgd", &layout),
            adam4: LazyPipeline::new("optim_vec4.wgsl", "adam4", &layout),
            sgd4: LazyPipeline::new("optim_vec4.wgsl", "sgd4", &layout),
            layout,
        })
    }

    /// Records one update of `len` parameters with the rule of `optimizer`.
    pub fn record(
        &self,
        gpu: &Gpu,
        optimizer: &Optimizer,
        len: usize,
        b: &OptimBuffers<'_>,
    ) -> Result<Dispatch> {
        for (name, buf) in [("params", b.params), ("grads", b.grads), ("m", b.m), ("v", b.v)] {
            if len == 0 || (buf.size() / 4) < len as u64 {
                return Err(Error::Shape(format!(
                    "optimizer: `{name}` holds {} floats, {len} needed",
                    buf.size() / 4
                )));
            }
        }
        let vec4 = len.is_multiple_of(4);
        let invocations = if vec4 { len / 4 } else { len };
        let len_u = [u32_of("parameter count", invocations)?, 0, 0, 0];
        let uniform = pipeline::uniform(gpu, "optim len", &len_u)?;
        let (pipeline, label) = match (optimizer, vec4) {
            (Optimizer::Adam { .. }, false) => (&self.adam, "adam"),
            (Optimizer::Sgd { .. }, false) => (&self.sgd, "sgd"),
            (Optimizer::Adam { .. }, true) => (&self.adam4, "adam4"),
            (Optimizer::Sgd { .. }, true) => (&self.sgd4, "sgd4"),
        };
        let bind = bind_group(
            gpu,
            label,
            &self.layout,
            &[
                Bind::Whole(&uniform),
                Bind::Range(b.step, 0, 32),
                Bind::Whole(b.params),
                Bind::Whole(b.grads),
                Bind::Whole(b.m),
                Bind::Whole(b.v),
            ],
        )?;
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, grid_1d(invocations, 256)))
    }
}
