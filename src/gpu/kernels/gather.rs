//! Host side of `shaders/gather.wgsl` (and its forms `gather_vec4.wgsl`, one vec4 per word,
//! and `gather_texture.wgsl`, into a texture): batches assembled on the device from the
//! resident u8 dataset and the epoch's index permutation.

use super::matmul_texture::{OperandTexture, PackParams};
use super::pipeline::{self, bind_group, bind_group_layout, u32_of, Bind, Dispatch, LazyPipeline, Slot};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::spec::pixel_lut;

#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    features: u32,
    words: u32,
    x_off: u32,
}

/// The per-launch values of a recorded pass (16 bytes): the batch's first position in `perm`,
/// which the gather reads, and the optimizer step and global row base, which dropout reads
/// (`shaders/dropout.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GatherStep {
    /// Position in `perm` of the batch's first row.
    pub start: u32,
    /// The optimizer step this launch computes the gradient for (1-based, modulo 2^32; 0 in
    /// evaluation, where dropout draws nothing).
    pub t: u32,
    /// The position of this launch's first row in the global batch (non-zero on a replica
    /// that computes a later share of a mirrored step).
    pub row_base: u32,
    /// Uniform padding to 16 bytes.
    pub pad: u32,
}

impl GatherStep {
    /// The launch starting at `start` in `perm`, for optimizer step `t`, its first row at
    /// `row_base` in the global batch.
    pub fn new(start: usize, t: u64, row_base: usize) -> Self {
        GatherStep { start: start as u32, t: t as u32, row_base: row_base as u32, pad: 0 }
    }
}

/// The device-resident sources of a gather.
#[derive(Debug, Clone, Copy)]
pub struct GatherSources<'a> {
    /// u8 pixels packed four to a u32, `words` u32 per image.
    pub pixels: &'a wgpu::Buffer,
    /// u32 words per image (`features` rounded up to a multiple of 4 bytes).
    pub words: usize,
    /// Pixels per image.
    pub features: usize,
    /// u32 label per image.
    pub labels: &'a wgpu::Buffer,
    /// u32 image indices; row r of a batch is image `perm[step.start + r]`.
    pub perm: &'a wgpu::Buffer,
    /// 256 f32, `lut[p] = p / 255`, in a uniform buffer: see [`pixel_lut_buffer`].
    pub lut: &'a wgpu::Buffer,
    /// A [`GatherStep`].
    pub step: &'a wgpu::Buffer,
}

/// A row-major matrix the texture gather's launch also packs into a texture of its own, as
/// `pack_texture` would (`texture.rows() x texture.cols()` floats from float `offset` of
/// `buffer`): the first layer's weights, read with the batch by its forward product.
#[derive(Debug, Clone, Copy)]
pub struct WeightPack<'a> {
    /// The flat parameters.
    pub buffer: &'a wgpu::Buffer,
    /// Where the matrix starts, in floats (a multiple of 4).
    pub offset: usize,
    /// The texture it is packed into (its width a whole number of texels).
    pub texture: &'a OperandTexture,
}

/// Storage buffers and storage textures the gather-and-pack entry points bind.
const PACK_STORAGE_BUFFERS: u32 = 6;
const PACK_STORAGE_TEXTURES: u32 = 2;

/// The gather pipeline of one device.
pub struct Gather {
    layout: wgpu::BindGroupLayout,
    pipeline: LazyPipeline,
    /// One vec4 store per word, when the features and offset are multiples of 4.
    pipeline4: LazyPipeline,
    /// Into an rgba32float texture, one word and four words per invocation; `None` where
    /// the device cannot write one.
    texture: Option<(wgpu::BindGroupLayout, [LazyPipeline; 2])>,
    /// The texture gathers that also pack a [`WeightPack`] (one word and four words per
    /// invocation); `None` where the device cannot bind their textures and buffers.
    texture_pack: Option<(wgpu::BindGroupLayout, [LazyPipeline; 2])>,
}

impl Gather {
    pub(crate) fn new(gpu: &Gpu) -> Result<Self> {
        use Slot::*;
        let layout = bind_group_layout(
            gpu,
            "gather",
            &[Uniform, Uniform, Read, Read, Read, Uniform, ReadWrite, ReadWrite],
        )?;
        let pipeline = LazyPipeline::new("gather.wgsl", "gather", &layout);
        let pipeline4 = LazyPipeline::new("gather_vec4.wgsl", "gather4", &layout);
        // Optional: a device without rgba32float storage textures just never gathers into one.
        let texture = bind_group_layout(
            gpu,
            "gather texture",
            &[Uniform, Uniform, Read, Read, Read, Uniform, TextureWrite, ReadWrite, Read],
        )
        .ok()
        .map(|l| {
            let lazy = |entry| LazyPipeline::new("gather_texture.wgsl", entry, &l);
            let pipelines = [lazy("gather_tex"), lazy("gather_tex4")];
            (l, pipelines)
        });
        let limits = gpu.device.limits();
        let texture_pack = (texture.is_some()
            && limits.max_storage_buffers_per_shader_stage >= PACK_STORAGE_BUFFERS
            && limits.max_storage_textures_per_shader_stage >= PACK_STORAGE_TEXTURES)
            .then(|| {
                bind_group_layout(
                    gpu,
                    "gather texture and pack",
                    &[
                        Uniform,
                        Uniform,
                        Read,
                        Read,
                        Read,
                        Uniform,
                        TextureWrite,
                        ReadWrite,
                        Read,
                        Uniform,
                        Read,
                        TextureWrite,
                    ],
                )
                .ok()
            })
            .flatten()
            .map(|l| {
                let lazy = |entry| LazyPipeline::new("gather_texture.wgsl", entry, &l);
                let pipelines = [lazy("gather_tex_pack"), lazy("gather_tex4_pack")];
                (l, pipelines)
            });
        Ok(Gather { layout, pipeline, pipeline4, texture, texture_pack })
    }

    /// Whether [`Gather::record_texture`] can also pack `w_rows x w_cols` weights while it
    /// gathers `rows` rows of `src` on this device (its textures and buffers, and a grid
    /// within the device's workgroup limit).
    pub fn packs_weights(
        &self,
        gpu: &Gpu,
        src: &GatherSources<'_>,
        rows: usize,
        w_rows: usize,
        w_cols: usize,
    ) -> bool {
        self.texture_pack.is_some()
            && self.supports_texture(src)
            && w_cols.is_multiple_of(4)
            && Self::pack_rows(gpu, texture_grid(src, rows), w_rows * (w_cols / 4)).is_some()
    }

    /// The gather's workgroups along y plus those that pack `texels` texels (256 each, spread
    /// over the gather's `grid[0]` columns), or `None` past the device's limit.
    fn pack_rows(gpu: &Gpu, grid: [u32; 3], texels: usize) -> Option<u32> {
        let extra = u32::try_from(texels.div_ceil(256).div_ceil(grid[0].max(1) as usize)).ok()?;
        let max = gpu.device.limits().max_compute_workgroups_per_dimension;
        grid[1].checked_add(extra).filter(|&y| y <= max)
    }

    /// Whether [`Gather::record_texture`] can gather rows of `src` on this device.
    pub fn supports_texture(&self, src: &GatherSources<'_>) -> bool {
        self.texture.is_some() && src.features > 0 && src.words * 4 == src.features
    }

    /// Records a gather of `rows` rows into the rgba32float texture `x` (texel (w, r) holds
    /// pixels 4w..4w+3 of row r: the layout the texture matmul variants read) and `y`; with
    /// `weights`, the same launch packs them into their texture too (extra workgroups along
    /// y: see `gather_tex_pack` in the shader).
    pub fn record_texture(
        &self,
        gpu: &Gpu,
        rows: usize,
        src: &GatherSources<'_>,
        x: &OperandTexture,
        y: &wgpu::Buffer,
        weights: Option<WeightPack<'_>>,
    ) -> Result<Dispatch> {
        let kernels = match weights {
            None => self.texture.as_ref(),
            Some(_) => self.texture_pack.as_ref(),
        };
        let Some((layout, [pipeline, pipeline4])) = kernels.filter(|_| self.supports_texture(src)) else {
            return Err(Error::Config(format!(
                "no texture gather{} for {} features in {} words on this device",
                if weights.is_some() { " packing weights" } else { "" },
                src.features,
                src.words
            )));
        };
        if x.cols() != src.words * 4 || x.rows() < rows {
            return Err(Error::Shape(format!(
                "a gather of {rows} rows of {} words does not fit a texture of {}x{} floats",
                src.words,
                x.rows(),
                x.cols()
            )));
        }
        let view = x.create_view(&Default::default());
        let (uniform, _) = self.prepare(gpu, rows, src, 0, y)?;
        let mut workgroups = texture_grid(src, rows);
        let four = src.words.is_multiple_of(4);
        let mut binds =
            source_binds(&uniform, src, [Bind::Texture(&view), Bind::Whole(y), Bind::Whole(src.pixels)]);
        let pack = weights.map(|w| self.prepare_pack(gpu, w, &mut workgroups)).transpose()?;
        if let Some((pack_uniform, pack_view, w)) = &pack {
            binds.extend([Bind::Whole(pack_uniform), Bind::Whole(w.buffer), Bind::Texture(pack_view)]);
        }
        let bind = bind_group(gpu, "gather texture", layout, &binds)?;
        let (label, pipeline) = match (four, pack.is_some()) {
            (true, false) => ("gather_tex4", pipeline4),
            (false, false) => ("gather_tex", pipeline),
            (true, true) => ("gather_tex4_pack", pipeline4),
            (false, true) => ("gather_tex_pack", pipeline),
        };
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, workgroups))
    }

    /// Checks `w`, adds the workgroups that pack it to the gather's grid (rows of them past
    /// the gather's along y, 256 texels each); returns its uniform and its texture's view.
    fn prepare_pack<'w>(
        &self,
        gpu: &Gpu,
        w: WeightPack<'w>,
        workgroups: &mut [u32; 3],
    ) -> Result<(wgpu::Buffer, wgpu::TextureView, WeightPack<'w>)> {
        let (rows, cols) = (w.texture.rows(), w.texture.cols());
        if !cols.is_multiple_of(4) || !w.offset.is_multiple_of(4) {
            return Err(Error::Shape(format!(
                "weights of {rows}x{cols} floats at offset {} cannot be packed as whole texels",
                w.offset
            )));
        }
        pipeline::check_fits("packed weights", (w.buffer, w.offset), rows * cols)?;
        let cols4 = cols / 4;
        let params = PackParams {
            rows: u32_of("weight rows", rows)?,
            cols4: u32_of("weight texels", cols4)?,
            off4: u32_of("weight offset", w.offset / 4)?,
            rs4: u32_of("weight row stride", cols4)?,
        };
        workgroups[1] = Self::pack_rows(gpu, *workgroups, rows * cols4).ok_or_else(|| {
            Error::Shape(format!(
                "a gather packing {rows}x{cols} weights needs more workgroups along y than the device's {}: \
                 pack them apart",
                gpu.device.limits().max_compute_workgroups_per_dimension
            ))
        })?;
        let uniform = pipeline::uniform(gpu, "gather pack params", &params)?;
        Ok((uniform, w.texture.create_view(&Default::default()), w))
    }

    /// Checks a gather's shape; returns its uniform and grid.
    fn prepare(
        &self,
        gpu: &Gpu,
        rows: usize,
        src: &GatherSources<'_>,
        x_off: usize,
        y: &wgpu::Buffer,
    ) -> Result<(wgpu::Buffer, [u32; 3])> {
        if rows == 0 || src.features == 0 || src.words * 4 < src.features {
            return Err(Error::Shape(format!(
                "gather of {rows} rows with {} features in {} words",
                src.features, src.words
            )));
        }
        if (y.size() / 4) < rows as u64 {
            return Err(Error::Shape(format!("gather of {rows} rows does not fit its label buffer")));
        }
        let params = Params {
            rows: u32_of("rows", rows)?,
            features: u32_of("features", src.features)?,
            words: u32_of("words", src.words)?,
            x_off: u32_of("offset", x_off)?,
        };
        let uniform = pipeline::uniform(gpu, "gather", &params)?;
        let workgroups = [(src.words as u32).div_ceil(64), (rows as u32).div_ceil(4), 1];
        let max = gpu.device.limits().max_compute_workgroups_per_dimension;
        if workgroups[0] > max || workgroups[1] > max {
            return Err(Error::Shape(format!(
                "a gather of {rows} rows of {} words needs {}x{} workgroups, over the device's {max}: use smaller batches",
                src.words, workgroups[0], workgroups[1]
            )));
        }
        Ok((uniform, workgroups))
    }

    /// Records a gather of `rows` rows into `x[x_off..]` (f32) and `y` (u32).
    pub fn record(
        &self,
        gpu: &Gpu,
        rows: usize,
        src: &GatherSources<'_>,
        x: (&wgpu::Buffer, usize),
        y: &wgpu::Buffer,
    ) -> Result<Dispatch> {
        if (x.0.size() / 4) < (x.1 + rows * src.features) as u64 {
            return Err(Error::Shape(format!("gather of {rows} rows does not fit its output buffers")));
        }
        let (uniform, workgroups) = self.prepare(gpu, rows, src, x.1, y)?;
        let bind = bind_group(
            gpu,
            "gather",
            &self.layout,
            &source_binds(&uniform, src, [Bind::Whole(x.0), Bind::Whole(y)]),
        )?;
        // gather4 writes every word of a row as one vec4: only when rows have no padding word.
        let (label, pipeline) =
            if src.features.is_multiple_of(4) && src.words * 4 == src.features && x.1.is_multiple_of(4) {
                ("gather4", &self.pipeline4)
            } else {
                ("gather", &self.pipeline)
            };
        Ok(Dispatch::new(label, pipeline.get(gpu)?, bind, workgroups))
    }
}

/// The texture gather's grid for `rows` rows of `src`: (64, 4)-invocation workgroups, one word
/// per invocation, or four where rows are whole vec4<u32>s (MNIST: 196 words). Within the
/// device's limits when the buffer gather's grid is (`Gather::prepare` checks that one).
fn texture_grid(src: &GatherSources<'_>, rows: usize) -> [u32; 3] {
    let per_x = if src.words.is_multiple_of(4) { src.words / 4 } else { src.words };
    [per_x.div_ceil(64) as u32, rows.div_ceil(4) as u32, 1]
}

/// Bindings 0-5 of every gather form (its uniform, the step, the resident data set), then
/// the form's own outputs.
fn source_binds<'a>(
    uniform: &'a wgpu::Buffer,
    src: &GatherSources<'a>,
    rest: impl IntoIterator<Item = Bind<'a>>,
) -> Vec<Bind<'a>> {
    let mut binds = vec![
        Bind::Whole(uniform),
        Bind::Range(src.step, 0, 16),
        Bind::Whole(src.pixels),
        Bind::Whole(src.labels),
        Bind::Whole(src.perm),
        Bind::Whole(src.lut),
    ];
    binds.extend(rest);
    binds
}

/// Packs u8 rows of `features` bytes into u32 words, `words` per row, zero padded.
pub fn pack_pixels(pixels: &[u8], features: usize) -> (Vec<u32>, usize) {
    let words = features.div_ceil(4);
    let rows = pixels.len().checked_div(features).unwrap_or(0);
    let mut out = vec![0u32; rows * words];
    for (r, row) in pixels.chunks_exact(features.max(1)).enumerate() {
        for (f, &p) in row.iter().enumerate() {
            out[r * words + f / 4] |= (p as u32) << (8 * (f % 4));
        }
    }
    (out, words)
}

/// [`pixel_lut`] in the uniform buffer a gather binds as [`GatherSources::lut`].
pub fn pixel_lut_buffer(gpu: &Gpu) -> Result<wgpu::Buffer> {
    pipeline::uniform(gpu, "pixel lut", &pixel_lut())
}
