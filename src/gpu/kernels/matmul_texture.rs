//! Host side of `shaders/matmul_texture.wgsl` and `shaders/pack_texture.wgsl`: the matmul
//! variants that read their operands from rgba32float textures. A recorded product owns a
//! texture and a pack launch for each operand its caller did not pack ahead (see
//! [`Packed`](super::Packed): the batch's gather, the launch that wrote dZ, or a pack launch
//! shared by the products that read the operand can fill one); the packs run right before
//! the product, inside the same [`Dispatch`], on every replay.
//!
//! Why textures: on lavapipe a storage-buffer load is a per-lane scalar loop with a bounds
//! check, while a texel fetch is one vectorized gather, so the products that dominate a
//! training step run 2-3x faster this way even after paying for the packs. On other
//! adapters the autotuner decides by measurement, like for every variant.

use super::matmul::Packed;
use super::pipeline::{
    self, bind_group, bind_group_layout, grid_1d, u32_of, Bind, Dispatch, LazyPipeline, Slot,
};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// The uniform of `pack_texture.wgsl` and of the gather's weight pack, which copies as it does
/// (`PackParams` in `shaders/pack_params.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PackParams {
    pub rows: u32,
    pub cols4: u32,
    pub off4: u32,
    pub rs4: u32,
}

/// A matrix stored row-major in a buffer: `rows` x `cols` floats from float `offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
}

/// An rgba32float texture holding a `rows` x `cols` matrix as it is stored, 4 floats per
/// texel (see [`crate::gpu::kernels::Matmul::operand_texture`]). It may have one row more
/// than the matrix, so that its height is never a power of two: Mesa's llvmpipe compiles a
/// kernel again for each combination of power-of-two texture sides it is launched with.
#[derive(Debug)]
pub struct OperandTexture {
    texture: wgpu::Texture,
    rows: usize,
    cols: usize,
}

impl OperandTexture {
    /// Rows of the matrix it holds (the texture can be taller).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Floats per row of the matrix it holds (four per texel).
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl std::ops::Deref for OperandTexture {
    type Target = wgpu::Texture;

    fn deref(&self) -> &wgpu::Texture {
        &self.texture
    }
}

/// Texture rows for a matrix of `rows` rows: the next count that is not a power of two.
///
/// Why: Mesa's llvmpipe (under lavapipe and GL) compiles a shader once per "variant", and a
/// variant's key records, for every bound texture, whether its width and height are powers
/// of two. A training batch of 128 rows, its 112-row tail and a 1000-row evaluation chunk
/// then cost three LLVM compilations of the same kernel (1.2-2.5 s each on a cold cache).
/// With no power-of-two height the key does not change with the batch. The kernels clamp
/// every load to the matrix's own rows, so the extra row is never read.
pub(crate) fn physical_rows(rows: usize) -> usize {
    let mut h = rows.max(1);
    while h.is_power_of_two() {
        h += 1;
    }
    h
}

/// The pack pipeline and the bind-group layout the texture matmul pipelines use.
pub(crate) struct TexturePath {
    pack_layout: wgpu::BindGroupLayout,
    pack: LazyPipeline,
    /// Bindings of matmul_texture.wgsl and matmul_texture_sg.wgsl: params, A, B, C, z, the
    /// buffer B came from (bias).
    pub layout: wgpu::BindGroupLayout,
    /// Largest texture side the device accepts.
    pub max_side: usize,
}

impl TexturePath {
    /// The texture path, or `None` when the device cannot create rgba32float storage
    /// textures (then only the buffer variants run there). The pack pipeline is built on
    /// its first use.
    pub fn new(gpu: &Gpu) -> Option<Self> {
        use Slot::*;
        let probe = gpu.scoped("probing rgba32float storage textures", || texture(gpu, 1, 1)).ok()?;
        drop(probe);
        let pack_layout = bind_group_layout(gpu, "pack texture", &[Uniform, Read, TextureWrite]).ok()?;
        let pack = LazyPipeline::new("pack_texture.wgsl", "pack_texture", &pack_layout);
        let layout = bind_group_layout(
            gpu,
            "matmul texture",
            &[Uniform, Texture, Texture, ReadWrite, ReadWrite, Read],
        )
        .ok()?;
        let max_side = gpu.device.limits().max_texture_dimension_2d as usize;
        Some(TexturePath { pack_layout, pack, layout, max_side })
    }

    /// Whether a stored matrix of `rows` x `cols` floats at `offset` can be packed: whole
    /// texels (cols % 4 == 0), 16-byte aligned, and within the device's texture size.
    pub fn fits(&self, rows: usize, cols: usize, offset: usize) -> bool {
        cols.is_multiple_of(4)
            && offset.is_multiple_of(4)
            && (1..=self.max_side).contains(&rows)
            && (1..=self.max_side).contains(&(cols / 4))
    }

    /// A texture for a `rows` x `cols` matrix (the caller checked [`TexturePath::fits`]), of
    /// [`physical_rows`] rows.
    pub fn texture(&self, gpu: &Gpu, rows: usize, cols: usize) -> Result<OperandTexture> {
        // At the device's largest side a power-of-two height stays as it is.
        let height = u32_of("texture height", physical_rows(rows).min(self.max_side.max(rows)))?;
        let width = u32_of("texture width", cols / 4)?;
        let texture = gpu.scoped("creating an operand texture", || texture(gpu, width, height))?;
        Ok(OperandTexture { texture, rows, cols })
    }

    /// A texture for `m` and the launch that fills it from its buffer.
    pub fn pack(&self, gpu: &Gpu, m: Stored<'_>) -> Result<(wgpu::TextureView, Dispatch)> {
        self.check_packable(m)?;
        let tex = self.texture(gpu, m.rows, m.cols)?;
        let view = tex.create_view(&Default::default());
        let launch = self.pack_launch(gpu, m, &view)?;
        Ok((view, launch))
    }

    /// The launch that fills `tex` (from [`TexturePath::texture`]) with `m` from its buffer.
    pub fn pack_into(&self, gpu: &Gpu, m: Stored<'_>, tex: &OperandTexture) -> Result<Dispatch> {
        self.check_packable(m)?;
        let view = prepacked_view("the packed operand", tex, m)?;
        self.pack_launch(gpu, m, &view)
    }

    fn check_packable(&self, m: Stored<'_>) -> Result<()> {
        let (rows, cols) = (m.rows, m.cols);
        if !self.fits(rows, cols, m.offset) {
            return Err(Error::Shape(format!(
                "a {rows}x{cols} matrix at offset {} cannot be packed into a texture (max side {})",
                m.offset, self.max_side
            )));
        }
        pipeline::check_fits("texture pack source", (m.buffer, m.offset), rows * cols)
    }

    fn pack_launch(&self, gpu: &Gpu, m: Stored<'_>, view: &wgpu::TextureView) -> Result<Dispatch> {
        let cols4 = m.cols / 4;
        let params = PackParams {
            rows: u32_of("texture rows", m.rows)?,
            cols4: u32_of("texture width", cols4)?,
            off4: u32_of("texture source offset", m.offset / 4)?,
            rs4: u32_of("texture row stride", cols4)?,
        };
        let uniform = pipeline::uniform(gpu, "pack params", &params)?;
        let bind = bind_group(
            gpu,
            "pack texture",
            &self.pack_layout,
            &[Bind::Whole(&uniform), Bind::Whole(m.buffer), Bind::Texture(view)],
        )?;
        Ok(Dispatch::new("pack_texture", self.pack.get(gpu)?, bind, grid_1d(m.rows * cols4, 64)))
    }

    /// The texture views of A and B for a texture variant, each operand as stored (B of
    /// C = A B^T too: `mm_tex_abt` reads its rows as C's columns): packed ahead (see
    /// [`Packed`]), or packed now by a launch pushed to `before`.
    pub(super) fn views(
        &self,
        gpu: &Gpu,
        [a, b]: [Stored<'_>; 2],
        packed: Packed<'_>,
        before: &mut Vec<Dispatch>,
    ) -> Result<[wgpu::TextureView; 2]> {
        let mut view = |what: &str, ahead: Option<&OperandTexture>, m: Stored<'_>| match ahead {
            Some(tex) => prepacked_view(what, tex, m),
            None => {
                let (view, pack) = self.pack(gpu, m)?;
                before.push(pack);
                Ok(view)
            }
        };
        Ok([view("A", packed.a, a)?, view("B", packed.b, b)?])
    }
}

fn texture(gpu: &Gpu, width: u32, height: u32) -> wgpu::Texture {
    gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("matmul operand"),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        // COPY_SRC: tests read textures back.
        usage: wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// A view of `tex`, which the caller packed with `operand` (`what`: "A" or "B") as stored;
/// an error when it has the wrong width or too few rows.
fn prepacked_view(what: &str, tex: &OperandTexture, operand: Stored<'_>) -> Result<wgpu::TextureView> {
    if tex.cols() != operand.cols || tex.rows() < operand.rows {
        return Err(Error::Shape(format!(
            "a texture packed with {}x{} floats cannot hold {what} of {}x{} floats",
            tex.rows(),
            tex.cols(),
            operand.rows,
            operand.cols
        )));
    }
    Ok(tex.create_view(&Default::default()))
}
