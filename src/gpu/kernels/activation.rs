//! Host side of `shaders/activation.wgsl`: element-wise activation forward and backward.

use super::pipeline::{
    self, bind_group, bind_group_layout, check_fits, grid_1d, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::spec::Activation;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    code: u32,
    in_off: u32,
    aux_off: u32,
    out_off: u32,
    pad: [u32; 3],
}

/// The activation pipelines of one device (see `Kernels::activation` for who uses them).
#[cfg_attr(not(test), allow(dead_code))]
pub struct ActivationKernels {
    layout: wgpu::BindGroupLayout,
    forward: LazyPipeline,
    backward: LazyPipeline,
}

#[cfg_attr(not(test), allow(dead_code))]
impl ActivationKernels {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "activation", &[Uniform, Read, Read, ReadWrite])?;
        let forward = LazyPipeline::new("activation.wgsl", "act_forward", &layout);
        let backward = LazyPipeline::new("activation.wgsl", "act_backward", &layout);
        Ok(ActivationKernels { layout, forward, backward })
    }

    /// `out = act(x)` over `len` floats.
    pub fn forward(
        &self,
        gpu: &Gpu,
        act: Activation,
        len: usize,
        x: (&wgpu::Buffer, usize),
        out: (&wgpu::Buffer, usize),
    ) -> Result<Dispatch> {
        self.record(gpu, &self.forward, "act_forward", act, len, x, x, out)
    }

    /// `dz = dy * act'(z)` over `len` floats.
    pub fn backward(
        &self,
        gpu: &Gpu,
        act: Activation,
        len: usize,
        dy: (&wgpu::Buffer, usize),
        z: (&wgpu::Buffer, usize),
        dz: (&wgpu::Buffer, usize),
    ) -> Result<Dispatch> {
        self.record(gpu, &self.backward, "act_backward", act, len, dy, z, dz)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        pipeline: &LazyPipeline,
        label: &'static str,
        act: Activation,
        len: usize,
        x: (&wgpu::Buffer, usize),
        aux: (&wgpu::Buffer, usize),
        out: (&wgpu::Buffer, usize),
    ) -> Result<Dispatch> {
        check_fits("activation input", x, len)?;
        check_fits("activation saved pre-activation", aux, len)?;
        check_fits("activation output", out, len)?;
        let params = Params {
            len: u32_of("len", len)?,
            code: act.code(),
            in_off: u32_of("offset", x.1)?,
            aux_off: u32_of("offset", aux.1)?,
            out_off: u32_of("offset", out.1)?,
            pad: [0; 3],
        };
        let uniform = pipeline::uniform(gpu, label, &params)?;
        let bind = bind_group(
            gpu,
            label,
            &self.layout,
            &[Bind::Whole(&uniform), Bind::Whole(x.0), Bind::Whole(aux.0), Bind::Whole(out.0)],
        )?;
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, grid_1d(len, 256)))
    }
}
