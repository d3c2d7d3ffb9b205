//! Host side of `shaders/reduce.wgsl`: column sums (bias gradients) and the element-wise
//! `scale` / `add_scaled` used for gradient averaging.

use super::pipeline::{
    self, bind_group, bind_group_layout, check_fits, grid_1d, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::Result;
use crate::gpu::Gpu;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    in_off: u32,
    out_off: u32,
    len: u32,
    alpha: f32,
    pad: [u32; 2],
}

/// The reduction pipelines of one device.
pub struct Reduce {
    layout: wgpu::BindGroupLayout,
    column_sums: LazyPipeline,
    column_sums_batched: LazyPipeline,
    /// Whether [`Reduce::column_sums`] uses the batched-load form: on GPUs (an H100 took
    /// 27 us for 128 x 64 with one load in flight), not on CPU drivers (lavapipe ran the
    /// batched form 4-5x slower than the plain loop). Both give the same bits.
    prefer_batched: bool,
    // Elementwise helpers no training pass launches today; tested like the other kernels.
    #[cfg_attr(not(test), allow(dead_code))]
    scale: LazyPipeline,
    #[cfg_attr(not(test), allow(dead_code))]
    add_scaled: LazyPipeline,
}

impl Reduce {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "reduce", &[Uniform, Read, ReadWrite])?;
        let lazy = |entry| LazyPipeline::new("reduce.wgsl", entry, &layout);
        let (column_sums, column_sums_batched) = (lazy("column_sums"), lazy("column_sums_batched"));
        let (scale, add_scaled) = (lazy("scale"), lazy("add_scaled"));
        let prefer_batched = gpu.report.device_type != "cpu";
        Ok(Reduce { layout, column_sums, column_sums_batched, prefer_batched, scale, add_scaled })
    }

    /// `out[j] = sum_i x[i, j]` for `x: [rows, cols]`, rows added in order. (Training passes
    /// fold it into the weight-gradient product, `Matmul::record_with_sums`, same bits.)
    pub fn column_sums(
        &self,
        gpu: &Gpu,
        rows: usize,
        cols: usize,
        x: (&wgpu::Buffer, usize),
        out: (&wgpu::Buffer, usize),
    ) -> Result<Dispatch> {
        self.column_sums_as(gpu, self.prefer_batched, rows, cols, x, out)
    }

    /// [`Reduce::column_sums`] in the plain form or the batched-load form (same bits; the
    /// device's faster one is chosen by `column_sums`).
    pub fn column_sums_as(
        &self,
        gpu: &Gpu,
        batched: bool,
        rows: usize,
        cols: usize,
        x: (&wgpu::Buffer, usize),
        out: (&wgpu::Buffer, usize),
    ) -> Result<Dispatch> {
        check_fits("column sums input", x, rows * cols)?;
        check_fits("column sums output", out, cols)?;
        let params = Params {
            rows: u32_of("rows", rows)?,
            cols: u32_of("cols", cols)?,
            in_off: u32_of("offset", x.1)?,
            out_off: u32_of("offset", out.1)?,
            len: 0,
            alpha: 0.0,
            pad: [0; 2],
        };
        let (pipeline, label) = if batched {
            (&self.column_sums_batched, "column_sums_batched")
        } else {
            (&self.column_sums, "column_sums")
        };
        self.record(gpu, pipeline, label, params, x.0, out.0, grid_1d(cols, 256))
    }

    /// `out *= alpha` over `len` floats.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn scale(&self, gpu: &Gpu, len: usize, alpha: f32, out: (&wgpu::Buffer, usize)) -> Result<Dispatch> {
        check_fits("scale", out, len)?;
        let params = Params {
            rows: 0,
            cols: 0,
            in_off: 0,
            out_off: u32_of("offset", out.1)?,
            len: u32_of("len", len)?,
            alpha,
            pad: [0; 2],
        };
        // `x` is unused by `scale`; a read binding of `out` would conflict with its write, so
        // the uniform buffer is not an option either: bind a dedicated one-vec4 dummy.
        let dummy = gpu.storage_buffer("scale dummy", 16, wgpu::BufferUsages::empty())?;
        self.record(gpu, &self.scale, "scale", params, &dummy, out.0, grid_1d(len, 256))
    }

    /// `out += alpha * x` over `len` floats.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn add_scaled(
        &self,
        gpu: &Gpu,
        len: usize,
        alpha: f32,
        x: (&wgpu::Buffer, usize),
        out: (&wgpu::Buffer, usize),
    ) -> Result<Dispatch> {
        check_fits("add_scaled input", x, len)?;
        check_fits("add_scaled output", out, len)?;
        let params = Params {
            rows: 0,
            cols: 0,
            in_off: u32_of("offset", x.1)?,
            out_off: u32_of("offset", out.1)?,
            len: u32_of("len", len)?,
            alpha,
            pad: [0; 2],
        };
        self.record(gpu, &self.add_scaled, "add_scaled", params, x.0, out.0, grid_1d(len, 256))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        gpu: &Gpu,
        pipeline: &LazyPipeline,
        label: &'static str,
        params: Params,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let uniform = pipeline::uniform(gpu, label, &params)?;
        let bind =
            bind_group(gpu, label, &self.layout, &[Bind::Whole(&uniform), Bind::Whole(x), Bind::Whole(out)])?;
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, workgroups))
    }
}
