//! Host side of `shaders/dropout.wgsl`: inverted dropout's forward (or, in evaluation, a copy)
//! and its backward with the layer below's activation derivative fused. The keep decisions
//! are [`DropoutMask`]'s; the optimizer step and the global row base come from the gather's
//! per-launch uniform ([`GatherStep`](super::GatherStep)), so a recorded dispatch draws new
//! masks every step with no host work.

use super::pipeline::{
    self, bind_group, bind_group_layout, check_fits, grid_1d, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::spec::{Activation, DropoutMask};

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    units: u32,
    layer: u32,
    threshold: u32,
    key: [u32; 2],
    scale: f32,
    code: u32,
    in_off: u32,
    z_off: u32,
    out_off: u32,
    train: u32,
}

/// One dropout dispatch: `[rows, units]` from `x` into `out`. The mask's `step` is not used:
/// each launch reads its own from `step`.
#[derive(Debug, Clone, Copy)]
pub struct DropoutCall<'a> {
    pub rows: usize,
    pub units: usize,
    pub mask: DropoutMask,
    /// The per-launch uniform, a [`GatherStep`](super::GatherStep): `t` and `row_base`.
    pub step: &'a wgpu::Buffer,
    /// The forward's input, or the backward's output gradient `dy`.
    pub x: (&'a wgpu::Buffer, usize),
    /// The forward's output, or the backward's input gradient.
    pub out: (&'a wgpu::Buffer, usize),
}

/// The dropout pipelines of one device.
pub struct DropoutKernels {
    layout: wgpu::BindGroupLayout,
    forward: LazyPipeline,
    backward: LazyPipeline,
}

impl DropoutKernels {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "dropout", &[Uniform, Uniform, Read, Read, ReadWrite])?;
        let forward = LazyPipeline::new("dropout.wgsl", "dropout_forward", &layout);
        let backward = LazyPipeline::new("dropout.wgsl", "dropout_backward", &layout);
        Ok(DropoutKernels { layout, forward, backward })
    }

    /// Training (`train`): `out = keep ? x * scale : 0`; evaluation: `out = x`.
    pub fn forward(&self, gpu: &Gpu, call: &DropoutCall<'_>, train: bool) -> Result<Dispatch> {
        let params = self.params(call, (call.x.0, 0), Activation::Identity, train)?;
        self.record(gpu, &self.forward, "dropout_forward", call, params, call.x.0)
    }

    /// `out = (keep ? dy * scale : 0) * act'(z)`, `dy` in `call.x`, `z: [rows, units]` the
    /// pre-activation of the layer below (its output for the identity).
    pub fn backward(
        &self,
        gpu: &Gpu,
        call: &DropoutCall<'_>,
        z: (&wgpu::Buffer, usize),
        act: Activation,
    ) -> Result<Dispatch> {
        check_fits("dropout backward's pre-activation", z, call.rows * call.units)?;
        let params = self.params(call, z, act, true)?;
        self.record(gpu, &self.backward, "dropout_backward", call, params, z.0)
    }

    fn params(
        &self,
        call: &DropoutCall<'_>,
        z: (&wgpu::Buffer, usize),
        act: Activation,
        train: bool,
    ) -> Result<Params> {
        let len = call.rows * call.units;
        check_fits("dropout input", call.x, len)?;
        check_fits("dropout output", call.out, len)?;
        u32_of("dropout rows * ceil(units / 4)", call.rows * call.units.div_ceil(4))?;
        Ok(Params {
            rows: u32_of("rows", call.rows)?,
            units: u32_of("units", call.units)?,
            layer: call.mask.layer,
            threshold: call.mask.threshold,
            key: call.mask.key,
            scale: call.mask.scale,
            code: act.code(),
            in_off: u32_of("offset", call.x.1)?,
            z_off: u32_of("offset", z.1)?,
            out_off: u32_of("offset", call.out.1)?,
            train: u32::from(train),
        })
    }

    fn record(
        &self,
        gpu: &Gpu,
        pipeline: &LazyPipeline,
        label: &'static str,
        call: &DropoutCall<'_>,
        params: Params,
        z: &wgpu::Buffer,
    ) -> Result<Dispatch> {
        let uniform = pipeline::uniform(gpu, label, &params)?;
        let binds = [
            Bind::Whole(&uniform),
            Bind::Whole(call.step),
            Bind::Whole(call.x.0),
            Bind::Whole(z),
            Bind::Whole(call.out.0),
        ];
        let bind = bind_group(gpu, label, &self.layout, &binds)?;
        let invocations = call.rows * call.units.div_ceil(4);
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, grid_1d(invocations, 256)))
    }
}
