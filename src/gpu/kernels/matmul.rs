//! Host side of `shaders/matmul.wgsl`, `shaders/matmul_vec4.wgsl`,
//! `shaders/matmul_texture.wgsl` and `shaders/matmul_texture_sg.wgsl`: one pipeline per variant, and [`Matmul::record`] which turns
//! a [`MatmulCall`] into a replayable [`Dispatch`].

use super::matmul_texture::{OperandTexture, Stored, TexturePath};
use super::matmul_variant::Family;
pub use super::matmul_variant::Variant;
use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::MatmulForm;
use crate::spec::Activation;

/// Operands of a product that its caller has already packed into textures for the texture
/// variants (each filled, on every replay, before the product runs), so the product's
/// [`Dispatch`] packs only the others. The buffer variants read the operands' buffers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Packed<'a> {
    /// A as stored (`m x k` for A B, `k x m` for A^T B), e.g. the batch gathered into one.
    pub a: Option<&'a OperandTexture>,
    /// B as stored (`k x n` for A B and A^T B, `n x k` for A B^T), e.g. a layer's dZ
    /// written there by the backward of the layer above.
    pub b: Option<&'a OperandTexture>,
}

impl<'a> Packed<'a> {
    /// Nothing packed ahead.
    pub const NONE: Packed<'static> = Packed { a: None, b: None };

    /// A packed ahead (when given), B packed by the product.
    pub fn a(a: Option<&'a OperandTexture>) -> Self {
        Packed { a, b: None }
    }
}

/// One product to record: `C[c_off..] = epilogue(op(A) op(B))`. Offsets are in floats.
#[derive(Debug, Clone, Copy)]
pub struct MatmulCall<'a> {
    /// Which operands are transposed.
    pub form: MatmulForm,
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Length of each dot product.
    pub k: usize,
    /// A's buffer and offset in floats.
    pub a: (&'a wgpu::Buffer, usize),
    /// B's buffer and offset in floats.
    pub b: (&'a wgpu::Buffer, usize),
    /// C's buffer and offset in floats (written).
    pub c: (&'a wgpu::Buffer, usize),
    /// Add `b[bias..bias + n]` to every row (the bias lives in the same buffer as B).
    pub bias: Option<usize>,
    /// Activation applied in the epilogue (forward), or whose derivative multiplies the
    /// product (when `act_backward`).
    pub act: Activation,
    /// Forward: where to store the pre-activation (optional). Backward: where to read it.
    pub z: Option<(&'a wgpu::Buffer, usize)>,
    /// Multiply by `act'(z)` instead of applying `act` (fused activation backward).
    pub act_backward: bool,
}

impl<'a> MatmulCall<'a> {
    /// A plain product, no epilogue.
    pub fn plain(
        form: MatmulForm,
        m: usize,
        n: usize,
        k: usize,
        a: &'a wgpu::Buffer,
        b: &'a wgpu::Buffer,
        c: &'a wgpu::Buffer,
    ) -> Self {
        MatmulCall {
            form,
            m,
            n,
            k,
            a: (a, 0),
            b: (b, 0),
            c: (c, 0),
            bias: None,
            act: Activation::Identity,
            z: None,
            act_backward: false,
        }
    }

    fn offsets(&self) -> [usize; 5] {
        [self.a.1, self.b.1, self.c.1, self.bias.unwrap_or(0), self.z.map_or(0, |z| z.1)]
    }

    /// A and B as they are stored (row-major, contiguous rows), for packing into textures.
    pub(crate) fn stored_inputs(&self) -> Option<[Stored<'a>; 2]> {
        let (m, n, k) = (self.m, self.n, self.k);
        let ((a_rows, a_cols), (b_rows, b_cols)) = match self.form {
            MatmulForm::AB => ((m, k), (k, n)),
            MatmulForm::AtB => ((k, m), (k, n)),
            MatmulForm::ABt => ((m, k), (n, k)),
        };
        Some([
            Stored { buffer: self.a.0, offset: self.a.1, rows: a_rows, cols: a_cols },
            Stored { buffer: self.b.0, offset: self.b.1, rows: b_rows, cols: b_cols },
        ])
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    bias_off: u32,
    z_off: u32,
    /// `[col_sums (0 or 1), sums_off, sums_row]` (sums_row: the first row of workgroups
    /// along y that sums, past the product's): see [`Matmul::record_with_sums`].
    pad: [u32; 3],
}

const HAS_BIAS: u32 = 1;
const WRITE_PRE: u32 = 2;
const ACT_BACKWARD: u32 = 4;

/// The matmul pipelines of one device, each built the first time a product is recorded
/// with its variant.
pub struct Matmul {
    layout: wgpu::BindGroupLayout,
    /// `None` where the device cannot write rgba32float storage textures.
    texture: Option<TexturePath>,
    /// One per variant this device can run (no texture variants without a texture path, no
    /// subgroup variants without subgroups of exactly 8).
    pipelines: Vec<(Variant, LazyPipeline)>,
}

impl Matmul {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(gpu, "matmul", &[Uniform, Read, Read, ReadWrite, ReadWrite])?;
        let texture = TexturePath::new(gpu);
        let subgroups = gpu.has_subgroups_of(8);
        let pipelines = Variant::ALL
            .into_iter()
            .filter(|v| subgroups || !v.needs_subgroups())
            .filter_map(|v| {
                let layout = match (v.family(), &texture) {
                    (Family::Texture | Family::TextureSubgroup, Some(t)) => &t.layout,
                    (Family::Texture | Family::TextureSubgroup, None) => return None,
                    _ => &layout,
                };
                Some((v, LazyPipeline::new(v.family().file(), v.entry(), layout)))
            })
            .collect();
        Ok(Matmul { layout, texture, pipelines })
    }

    fn lazy(&self, variant: Variant) -> Result<&LazyPipeline> {
        self.pipelines.iter().find(|(v, _)| *v == variant).map(|(_, p)| p).ok_or_else(|| {
            Error::Config(format!("matmul variant {} cannot run on this device", variant.name()))
        })
    }

    /// Builds the pipelines of `variants` that are not built yet, in parallel where the
    /// driver compiles in parallel (see `pipeline::build_all`).
    pub(crate) fn build(&self, gpu: &Gpu, variants: &[Variant]) -> Result<()> {
        let lazies: Vec<&LazyPipeline> = variants.iter().map(|v| self.lazy(*v)).collect::<Result<_>>()?;
        pipeline::build_all(gpu, &lazies)
    }

    /// Whether the pipeline of `variant` has been built on this device (compiled, for the
    /// drivers that compile when a pipeline is created).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn is_built(&self, variant: Variant) -> bool {
        self.lazy(variant).is_ok_and(LazyPipeline::is_built)
    }

    /// Checks a call's shape against its buffers. Returns the uniform parameters.
    fn params(call: &MatmulCall<'_>) -> Result<Params> {
        let MatmulCall { form, m, n, k, .. } = *call;
        if m == 0 || n == 0 || k == 0 {
            return Err(Error::Shape(format!(
                "matmul {} with a zero dimension: m={m} n={n} k={k}",
                form.name()
            )));
        }
        let floats = |buf: &wgpu::Buffer| (buf.size() / 4) as usize;
        let need = [("A", call.a, m * k), ("B", call.b, k * n), ("C", call.c, m * n)];
        for (name, (buf, off), len) in need {
            if off + len > floats(buf) {
                return Err(Error::Shape(format!(
                    "matmul {} m={m} n={n} k={k}: {name} needs {len} floats at offset {off}, buffer holds {}",
                    form.name(),
                    floats(buf)
                )));
            }
        }
        if let Some(bias) = call.bias {
            if bias + n > floats(call.b.0) {
                return Err(Error::Shape(format!("matmul bias needs {n} floats at offset {bias}")));
            }
        }
        if let Some((buf, off)) = call.z {
            if off + m * n > floats(buf) {
                return Err(Error::Shape(format!(
                    "matmul pre-activation needs {} floats at offset {off}",
                    m * n
                )));
            }
        }
        if call.act_backward && call.z.is_none() {
            return Err(Error::Shape(
                "an activation backward epilogue needs the saved pre-activation".into(),
            ));
        }
        let [a_rs, a_cs, b_rs, b_cs] = form.strides(m, n, k);
        let mut flags = call.act.code() << 8;
        if call.bias.is_some() {
            flags |= HAS_BIAS;
        }
        if call.act_backward {
            flags |= ACT_BACKWARD;
        } else if call.z.is_some() {
            flags |= WRITE_PRE;
        }
        Ok(Params {
            m: u32_of("m", m)?,
            n: u32_of("n", n)?,
            k: u32_of("k", k)?,
            flags,
            a_off: u32_of("A offset", call.a.1)?,
            a_rs: a_rs as u32,
            a_cs: a_cs as u32,
            b_off: u32_of("B offset", call.b.1)?,
            b_rs: b_rs as u32,
            b_cs: b_cs as u32,
            c_off: u32_of("C offset", call.c.1)?,
            bias_off: u32_of("bias offset", call.bias.unwrap_or(0))?,
            z_off: u32_of("z offset", call.z.map_or(0, |z| z.1))?,
            pad: [0; 3],
        })
    }

    /// Whether `variant` can run `call` on this device.
    pub fn supports(&self, variant: Variant, call: &MatmulCall<'_>) -> bool {
        let built_here = self.pipelines.iter().any(|(v, _)| *v == variant);
        if !built_here || !variant.supports(call.form, call.m, call.n, call.k, call.offsets()) {
            return false;
        }
        if !variant.reads_textures() {
            return true;
        }
        match (&self.texture, call.stored_inputs()) {
            (Some(t), Some([a, b])) => t.fits(a.rows, a.cols, a.offset) && t.fits(b.rows, b.cols, b.offset),
            _ => false,
        }
    }

    /// Records `call` with `variant` (which must support it).
    pub fn record(&self, gpu: &Gpu, variant: Variant, call: &MatmulCall<'_>) -> Result<Dispatch> {
        self.record_with(gpu, variant, call, Packed::NONE)
    }

    /// A texture that can hold a `rows` x `cols` operand for the texture variants, or `None`
    /// where this device has no texture path or the matrix does not fit one.
    pub fn operand_texture(&self, gpu: &Gpu, rows: usize, cols: usize) -> Result<Option<OperandTexture>> {
        match &self.texture {
            Some(t) if t.fits(rows, cols, 0) => t.texture(gpu, rows, cols).map(Some),
            _ => Ok(None),
        }
    }

    /// The launch that fills `tex` (from [`Matmul::operand_texture`]) with the matrix `m`
    /// as stored, for products that take it packed ahead (see [`Packed`]).
    pub(crate) fn pack_into(&self, gpu: &Gpu, m: Stored<'_>, tex: &OperandTexture) -> Result<Dispatch> {
        match &self.texture {
            Some(t) => t.pack_into(gpu, m, tex),
            None => Err(Error::Config(
                "an operand was planned into a texture on a device without texture variants (a bug in \
                 wgtrain: please report it)"
                    .into(),
            )),
        }
    }

    /// [`Matmul::record`], with the operands in `packed` already packed by the caller (into
    /// textures from [`Matmul::operand_texture`] holding them as stored, filled before this
    /// product runs on every replay). Used by texture variants only; the others read the
    /// operands' buffers.
    pub fn record_with(
        &self,
        gpu: &Gpu,
        variant: Variant,
        call: &MatmulCall<'_>,
        packed: Packed<'_>,
    ) -> Result<Dispatch> {
        self.record_with_sums(gpu, variant, call, packed, None)
    }

    /// Column sums of B at `off` in C's buffer, checked: inside the buffer, clear of C (the
    /// two slices of the grid write at once), and vec4-aligned for the texture variants.
    fn check_sums(variant: Variant, call: &MatmulCall<'_>, off: usize) -> Result<usize> {
        pipeline::check_fits("matmul column sums", (call.c.0, off), call.n)?;
        if off < call.c.1 + call.m * call.n && call.c.1 < off + call.n {
            return Err(Error::Shape(format!(
                "matmul column sums at offset {off} overlap C ({} floats at {})",
                call.m * call.n,
                call.c.1
            )));
        }
        if variant.reads_textures() && !off.is_multiple_of(4) {
            return Err(Error::Shape(format!(
                "matmul variant {} stores column sums as vec4s: offset {off} is not a multiple of 4",
                variant.name()
            )));
        }
        Ok(off)
    }

    /// [`Matmul::record_with`], and with `sums` the same launch also writes the column sums
    /// of B, `C's buffer[sums + j] = sum_q B(q, j)` for `j < n`, with the bits of
    /// [`Reduce::column_sums`](super::Reduce::column_sums) (the bias gradient beside the
    /// weight gradient `X^T dZ`, which reads the same dZ). Every variant takes it: one more
    /// row of workgroups along y, past the product's, sums the columns (`col_sums_slice` in
    /// the shaders). The texture variants store vec4s: there `sums` must be a multiple of 4.
    pub fn record_with_sums(
        &self,
        gpu: &Gpu,
        variant: Variant,
        call: &MatmulCall<'_>,
        packed: Packed<'_>,
        sums: Option<usize>,
    ) -> Result<Dispatch> {
        let mut params = Self::params(call)?;
        if let Some(off) = sums {
            params.pad = [
                1,
                u32_of("column sums offset", Self::check_sums(variant, call, off)?)?,
                grid_rows(variant, call, false),
            ];
        }
        if !self.supports(variant, call) {
            return Err(Error::Config(format!(
                "matmul variant {} cannot run {} m={} n={} k={} with these offsets",
                variant.name(),
                call.form.name(),
                call.m,
                call.n,
                call.k
            )));
        }
        let pipeline = self.lazy(variant)?.get(gpu)?;
        let uniform = pipeline::uniform(gpu, "matmul params", &params)?;
        // Without a z buffer the binding is still required: C stands in (never read or written).
        let z = call.z.map_or(call.c.0, |z| z.0);
        let mut before = Vec::new();
        let bind = match (&self.texture, call.stored_inputs()) {
            (Some(texture), Some(stored)) if variant.reads_textures() => {
                let [a_view, b_view] = texture.views(gpu, stored, packed, &mut before)?;
                bind_group(
                    gpu,
                    "matmul texture",
                    &texture.layout,
                    &[
                        Bind::Whole(&uniform),
                        Bind::Texture(&a_view),
                        Bind::Texture(&b_view),
                        Bind::Whole(call.c.0),
                        Bind::Whole(z),
                        Bind::Whole(call.b.0),
                    ],
                )?
            }
            _ => bind_group(
                gpu,
                "matmul",
                &self.layout,
                &[
                    Bind::Whole(&uniform),
                    Bind::Whole(call.a.0),
                    Bind::Whole(call.b.0),
                    Bind::Whole(call.c.0),
                    Bind::Whole(z),
                ],
            )?,
        };
        // With column sums, one more row of workgroups along y computes them.
        let gy = grid_rows(variant, call, sums.is_some());
        let gx = grid_cols(variant, call.n);
        let max = gpu.device.limits().max_compute_workgroups_per_dimension;
        if gx > max || gy > max {
            return Err(Error::Shape(format!(
                "matmul m={} n={} needs {gx}x{gy} workgroups, over the limit {max}",
                call.m, call.n
            )));
        }
        Ok(Dispatch { before, ..Dispatch::new(variant.entry(), pipeline, bind, [gx, gy, 1]) })
    }
}

/// Workgroups along x of `variant`'s grid for C's `n` columns: over a workgroup's.
fn grid_cols(variant: Variant, n: usize) -> u32 {
    let ((_, cols), (wx, _)) = variant.tiling();
    (n as u32).div_ceil(cols * wx)
}

/// Workgroups along y of `variant`'s grid for `call`: C's rows over a workgroup's, and one row
/// more that sums B's columns when `sums`.
fn grid_rows(variant: Variant, call: &MatmulCall<'_>, sums: bool) -> u32 {
    let ((rows, _), (_, wy)) = variant.tiling();
    (call.m as u32).div_ceil(rows * wy) + u32::from(sums)
}

#[cfg(test)]
mod grid_tests {
    use super::{grid_cols, Variant};

    /// The row of workgroups that sums B's columns (`col_sums_slice` in the shaders, one
    /// lane per column, a texel of 4 for the texture variants, in a loop striding by the
    /// lanes) has a lane for every column of every width: the loop runs at most once per
    /// lane, so the GPU tests of the sums (`tests/matmul_sums.rs`) take every path it has.
    #[test]
    fn the_sums_row_has_a_lane_for_every_column() {
        for v in Variant::ALL {
            let (_, (wx, wy)) = v.tiling();
            let per_lane = if v.reads_textures() { 4 } else { 1 };
            for n in 1..=4096usize {
                let lanes = grid_cols(v, n) as usize * (wx * wy) as usize;
                assert!(lanes >= n.div_ceil(per_lane), "{}: {lanes} lanes for {n} columns", v.name());
            }
        }
    }
}
