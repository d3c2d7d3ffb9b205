//! Host side of `shaders/dense_backward.wgsl`: the backward of a narrow dense layer (at most
//! [`DENSE_BACKWARD_MAX_OUTPUTS`] outputs) in one launch, `dW = h^T dZ`, `db` = column sums
//! of `dZ` and `dX = (dZ W^T) * act'(z)` for the layer below, with the same bits as the
//! `matmul_with_sums` and ABt (activation-backward epilogue) launches it replaces.
//!
//! One item per invocation over a flat grid of 64-invocation workgroups (dW's 4x4 blocks,
//! db's columns, dX's 4x4 blocks), no barrier and no shared memory: unlike the single
//! workgroup of the softmax head, a software driver spreads it over its threads as it does a
//! matmul. Each invocation's chain of adds is that of the launch it replaces (`rows` for a dW
//! block, as in the AtB product; `n` for a dX block, as in the ABt one), so no shape limit
//! but the width. Its parameters live in a small read-only storage buffer rather than a
//! uniform (why: `shaders/dense_backward.wgsl`). Given a texture, it also writes `dX` there
//! as `pack_texture` would lay it out, for the layer below's products that read it from a
//! texture (its weight gradient, and its input gradient where it has one): one pack launch
//! fewer per step.

use super::matmul_texture::OperandTexture;
use super::pipeline::{
    bind_group, bind_group_layout, check_fits, grid_1d, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::spec::Activation;

/// Invocations per workgroup (`WG` in the shader).
const WG: usize = 64;
/// The widest layer (outputs) the fused backward takes: each dX block loops over the
/// outputs, and a wide layer's products run better as tuned matmuls.
pub const DENSE_BACKWARD_MAX_OUTPUTS: usize = 32;

/// Whether a layer of `n` outputs on `k` inputs over `rows` rows runs its backward fused:
/// `1..=`[`DENSE_BACKWARD_MAX_OUTPUTS`] outputs, and every size non-zero.
pub fn dense_backward_fits(rows: usize, n: usize, k: usize) -> bool {
    rows > 0 && k > 0 && (1..=DENSE_BACKWARD_MAX_OUTPUTS).contains(&n)
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    n: u32,
    k: u32,
    act: u32,
    h_off: u32,
    dz_off: u32,
    w_off: u32,
    dw_off: u32,
    db_off: u32,
    z_off: u32,
    dx_off: u32,
    dw_blocks: u32,
    dx_start: u32,
    total: u32,
    pad: [u32; 2],
}

/// One fused backward launch of a dense layer with `n` outputs on `k` inputs over `rows`
/// rows. Offsets are in floats.
#[derive(Debug, Clone, Copy)]
pub struct DenseBackwardCall<'a> {
    /// Rows in the batch.
    pub rows: usize,
    /// Outputs of the layer (columns of `dZ`).
    pub n: usize,
    /// Inputs of the layer (columns of `h` and of `dX`).
    pub k: usize,
    /// The layer's input `h [rows, k]`.
    pub h: (&'a wgpu::Buffer, usize),
    /// The gradient of the layer's pre-activation `dZ [rows, n]`.
    pub dz: (&'a wgpu::Buffer, usize),
    /// The flat parameters holding `W [k, n]` at `.1`.
    pub w: (&'a wgpu::Buffer, usize),
    /// The flat gradients: `dW [k, n]` written at `.1`.
    pub dw: (&'a wgpu::Buffer, usize),
    /// Offset of `db [n]` in the gradients' buffer.
    pub db: usize,
    /// The layer below's activation, whose derivative multiplies `dX`.
    pub act: Activation,
    /// What that derivative reads, `[rows, k]`: the pre-activation (the output for the
    /// identity, whose derivative is 1).
    pub z: (&'a wgpu::Buffer, usize),
    /// Where `dX [rows, k]` is written.
    pub dx: (&'a wgpu::Buffer, usize),
    /// A texture `dX` is written to as well, as stored (`k` a multiple of 4): B of the layer
    /// below's weight gradient for the texture matmul variants.
    pub dx_texture: Option<&'a OperandTexture>,
}

/// Storage buffers the kernel binds (its parameters among them).
const STORAGE_BUFFERS: u32 = 7;

/// The fused dense-backward pipeline of one device (built on first use); none where the
/// device binds fewer than [`STORAGE_BUFFERS`] storage buffers per shader (some GL drivers).
pub struct DenseBackward {
    kernel: Option<(wgpu::BindGroupLayout, LazyPipeline)>,
    /// `dense_backward_tex`, which writes dX into a texture too; `None` where the fused
    /// kernel is not supported or its layout with a storage texture cannot be made. (Whether
    /// anything reads such a texture is the texture matmul path's call: it probes the device.)
    texture: Option<(wgpu::BindGroupLayout, LazyPipeline)>,
}

impl DenseBackwardCall<'_> {
    /// The shapes the kernel takes, every slice inside its buffer, dW clear of db, and no
    /// buffer bound both read and written (wgpu refuses that in one launch).
    fn check(&self) -> Result<()> {
        let DenseBackwardCall { rows, n, k, .. } = *self;
        if !dense_backward_fits(rows, n, k) {
            return Err(Error::Shape(format!(
                "the fused dense backward takes rows > 0, k > 0 and 1 <= n <= \
                 {DENSE_BACKWARD_MAX_OUTPUTS}; got rows={rows} n={n} k={k}: record the products apart"
            )));
        }
        check_fits("dense backward input", self.h, rows * k)?;
        check_fits("dense backward dz", self.dz, rows * n)?;
        check_fits("dense backward weights", self.w, k * n)?;
        check_fits("dense backward weight gradient", self.dw, k * n)?;
        check_fits("dense backward bias gradient", (self.dw.0, self.db), n)?;
        check_fits("dense backward z", self.z, rows * k)?;
        check_fits("dense backward dx", self.dx, rows * k)?;
        // dW and db are written at once by different invocations: they must not overlap.
        if self.db < self.dw.1 + k * n && self.dw.1 < self.db + n {
            return Err(Error::Shape(format!(
                "dense backward: the bias gradient ({n} floats at {}) overlaps the weight gradient \
                 ({} floats at {})",
                self.db,
                k * n,
                self.dw.1
            )));
        }
        // A buffer bound writable cannot be bound a second time in the same launch.
        let reads = [("input", self.h.0), ("dz", self.dz.0), ("weights", self.w.0), ("z", self.z.0)];
        for (what, buf) in reads {
            for (out, w) in [("gradients", self.dw.0), ("dx", self.dx.0)] {
                if buf == w {
                    return Err(Error::Shape(format!(
                        "dense backward: the {what} and the {out} share a buffer, which the launch writes"
                    )));
                }
            }
        }
        if self.dw.0 == self.dx.0 {
            return Err(Error::Shape("dense backward: the gradients and dx share a buffer".into()));
        }
        Ok(())
    }
}

impl DenseBackward {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let slots = [Read, Read, Read, Read, ReadWrite, Read, ReadWrite];
        if gpu.device.limits().max_storage_buffers_per_shader_stage < STORAGE_BUFFERS {
            return Ok(DenseBackward { kernel: None, texture: None });
        }
        let layout = bind_group_layout(gpu, "dense_backward", &slots)?;
        let pipeline = LazyPipeline::new("dense_backward.wgsl", "dense_backward", &layout);
        // Optional: without rgba32float storage textures dX is packed by its reader instead.
        let texture = bind_group_layout(gpu, "dense_backward_tex", &[&slots[..], &[TextureWrite]].concat())
            .ok()
            .map(|l| {
                let pipeline = LazyPipeline::new("dense_backward.wgsl", "dense_backward_tex", &l);
                (l, pipeline)
            });
        Ok(DenseBackward { kernel: Some((layout, pipeline)), texture })
    }

    /// Whether this device runs the kernel (binds enough storage buffers); where it does not,
    /// callers record the separate launches.
    pub fn supported(&self) -> bool {
        self.kernel.is_some()
    }

    /// Whether the launch can also write a `rows x k` dX into a texture on this device.
    pub fn writes_texture(&self, k: usize) -> bool {
        self.texture.is_some() && k.is_multiple_of(4)
    }

    /// Records one launch; checks the shape against [`dense_backward_fits`] and the buffers.
    pub fn record(&self, gpu: &Gpu, call: &DenseBackwardCall<'_>) -> Result<Dispatch> {
        let DenseBackwardCall { rows, n, k, .. } = *call;
        let kernel = match call.dx_texture {
            None => self.kernel.as_ref(),
            Some(tex) => {
                if !self.writes_texture(k) {
                    return Err(Error::Config(format!(
                        "dense backward: dX of {k} columns cannot be written into a texture here (it needs \
                         k a multiple of 4 and rgba32float storage textures): let its reader pack it"
                    )));
                }
                if tex.cols() != k || tex.rows() < rows {
                    return Err(Error::Shape(format!(
                        "dense backward: dX of {rows}x{k} floats does not fit a texture of {}x{} floats",
                        tex.rows(),
                        tex.cols()
                    )));
                }
                self.texture.as_ref()
            }
        };
        let Some((layout, pipeline)) = kernel else {
            return Err(Error::Config(format!(
                "the fused dense backward binds {STORAGE_BUFFERS} storage buffers, more than this device \
                 allows: record the products apart"
            )));
        };
        call.check()?;
        let dw_blocks = k.div_ceil(4) * n.div_ceil(4);
        let dx_start = dw_blocks + n;
        let total = dx_start + rows.div_ceil(4) * k.div_ceil(4);
        let params = Params {
            rows: u32_of("rows", rows)?,
            n: u32_of("n", n)?,
            k: u32_of("k", k)?,
            act: call.act.code(),
            h_off: u32_of("offset", call.h.1)?,
            dz_off: u32_of("offset", call.dz.1)?,
            w_off: u32_of("offset", call.w.1)?,
            dw_off: u32_of("offset", call.dw.1)?,
            db_off: u32_of("offset", call.db)?,
            z_off: u32_of("offset", call.z.1)?,
            dx_off: u32_of("offset", call.dx.1)?,
            dw_blocks: u32_of("dense backward items", dw_blocks)?,
            dx_start: u32_of("dense backward items", dx_start)?,
            total: u32_of("dense backward items", total)?,
            pad: [0; 2],
        };
        let workgroups = grid_1d(total, WG);
        let max = gpu.device.limits().max_compute_workgroups_per_dimension;
        if workgroups[0] > max || workgroups[1] > max {
            return Err(Error::Shape(format!(
                "dense backward rows={rows} n={n} k={k} needs {workgroups:?} workgroups, over the limit {max}"
            )));
        }
        // A storage buffer, not a uniform: lavapipe inlines uniforms into shaders whose loops
        // they bound, which cost this kernel ~30 ms of driver time per step (the shader's header).
        let params = gpu.upload("dense_backward params", &[params], wgpu::BufferUsages::empty())?;
        let view = call.dx_texture.map(|t| t.create_view(&Default::default()));
        let mut binds = vec![
            Bind::Whole(&params),
            Bind::Whole(call.h.0),
            Bind::Whole(call.dz.0),
            Bind::Whole(call.w.0),
            Bind::Whole(call.dw.0),
            Bind::Whole(call.z.0),
            Bind::Whole(call.dx.0),
        ];
        binds.extend(view.as_ref().map(Bind::Texture));
        let bind = bind_group(gpu, "dense_backward", layout, &binds)?;
        let label = if view.is_some() { "dense_backward_tex" } else { "dense_backward" };
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, workgroups))
    }
}
