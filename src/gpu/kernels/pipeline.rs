//! What every kernel wrapper shares: shader sources, bind-group layouts, pipelines built
//! inside error scopes on their first use, small uniform buffers, and [`Dispatch`], a recorded kernel launch
//! that can be replayed every step without touching the host.

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Every WGSL file, embedded once. Libraries (no entry point) are appended to the kernels
/// that name them on their `// Requires:` line.
pub const SHADERS: &[(&str, &str)] = &[
    ("activation.wgsl", include_str!("../../../shaders/activation.wgsl")),
    ("activation_fns.wgsl", include_str!("../../../shaders/activation_fns.wgsl")),
    ("dense_backward.wgsl", include_str!("../../../shaders/dense_backward.wgsl")),
    ("dropout.wgsl", include_str!("../../../shaders/dropout.wgsl")),
    ("gather.wgsl", include_str!("../../../shaders/gather.wgsl")),
    ("gather_common.wgsl", include_str!("../../../shaders/gather_common.wgsl")),
    ("gather_targets.wgsl", include_str!("../../../shaders/gather_targets.wgsl")),
    ("gather_texture.wgsl", include_str!("../../../shaders/gather_texture.wgsl")),
    ("gather_values.wgsl", include_str!("../../../shaders/gather_values.wgsl")),
    ("gather_vec4.wgsl", include_str!("../../../shaders/gather_vec4.wgsl")),
    ("matmul.wgsl", include_str!("../../../shaders/matmul.wgsl")),
    ("matmul_epilogue.wgsl", include_str!("../../../shaders/matmul_epilogue.wgsl")),
    ("matmul_epilogue_vec4.wgsl", include_str!("../../../shaders/matmul_epilogue_vec4.wgsl")),
    ("matmul_params.wgsl", include_str!("../../../shaders/matmul_params.wgsl")),
    ("matmul_texture.wgsl", include_str!("../../../shaders/matmul_texture.wgsl")),
    ("matmul_texture_common.wgsl", include_str!("../../../shaders/matmul_texture_common.wgsl")),
    ("matmul_texture_sg.wgsl", include_str!("../../../shaders/matmul_texture_sg.wgsl")),
    ("matmul_vec4.wgsl", include_str!("../../../shaders/matmul_vec4.wgsl")),
    ("optim.wgsl", include_str!("../../../shaders/optim.wgsl")),
    ("optim_common.wgsl", include_str!("../../../shaders/optim_common.wgsl")),
    ("optim_vec4.wgsl", include_str!("../../../shaders/optim_vec4.wgsl")),
    ("pack_params.wgsl", include_str!("../../../shaders/pack_params.wgsl")),
    ("pack_texture.wgsl", include_str!("../../../shaders/pack_texture.wgsl")),
    ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl")),
    ("regression_loss.wgsl", include_str!("../../../shaders/regression_loss.wgsl")),
    ("sigmoid_xent.wgsl", include_str!("../../../shaders/sigmoid_xent.wgsl")),
    ("softmax_head.wgsl", include_str!("../../../shaders/softmax_head.wgsl")),
    ("softmax_xent_row.wgsl", include_str!("../../../shaders/softmax_xent_row.wgsl")),
    ("softmax_xent.wgsl", include_str!("../../../shaders/softmax_xent.wgsl")),
];

fn raw_source(file: &str) -> Result<&'static str> {
    SHADERS
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, src)| *src)
        .ok_or_else(|| Error::Config(format!("no shader named {file}")))
}

/// The files a shader's `// Requires:` line names, in order.
pub fn requirements(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("// Requires:"))
        .flat_map(|rest| rest.split_whitespace().map(str::to_string))
        .collect()
}

/// The full source of `file`: its own text first (so line numbers in errors are the file's),
/// then each library it requires.
pub fn shader_source(file: &str) -> Result<String> {
    let own = raw_source(file)?;
    let mut out = own.to_string();
    for lib in requirements(own) {
        out.push('\n');
        out.push_str(raw_source(&lib)?);
    }
    Ok(out)
}

/// The kind of each binding, in binding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Uniform,
    Read,
    ReadWrite,
    /// A sampled (textureLoad) rgba32float 2-D texture.
    Texture,
    /// A write-only rgba32float 2-D storage texture.
    TextureWrite,
}

fn binding_type(slot: Slot) -> wgpu::BindingType {
    let buffer = |ty| wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None };
    match slot {
        Slot::Uniform => buffer(wgpu::BufferBindingType::Uniform),
        Slot::Read => buffer(wgpu::BufferBindingType::Storage { read_only: true }),
        Slot::ReadWrite => buffer(wgpu::BufferBindingType::Storage { read_only: false }),
        Slot::Texture => wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        Slot::TextureWrite => wgpu::BindingType::StorageTexture {
            access: wgpu::StorageTextureAccess::WriteOnly,
            format: wgpu::TextureFormat::Rgba32Float,
            view_dimension: wgpu::TextureViewDimension::D2,
        },
    }
}

pub(crate) fn bind_group_layout(gpu: &Gpu, label: &str, slots: &[Slot]) -> Result<wgpu::BindGroupLayout> {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: binding_type(*slot),
            count: None,
        })
        .collect();
    gpu.scoped(&format!("creating bind group layout `{label}`"), || {
        gpu.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        })
    })
}

/// A compute pipeline built on its first use, not when its wrapper is created.
///
/// Why lazily: Mesa's software drivers (lavapipe, llvmpipe) compile a pipeline with LLVM,
/// 0.1-2.5 s each on a cold shader cache (36 s for one shared-memory variant on llvmpipe's
/// GL), and a device holds some forty pipelines (every kernel and matmul variant) of which a
/// training run launches about ten. Building only what is recorded keeps the others from ever
/// costing anything.
pub(crate) struct LazyPipeline {
    file: &'static str,
    entry: &'static str,
    layout: wgpu::BindGroupLayout,
    built: Mutex<Option<wgpu::ComputePipeline>>,
}

impl LazyPipeline {
    /// Entry point `entry` of `file`, with `layout`; nothing is compiled yet.
    pub(crate) fn new(file: &'static str, entry: &'static str, layout: &wgpu::BindGroupLayout) -> Self {
        LazyPipeline { file, entry, layout: layout.clone(), built: Mutex::new(None) }
    }

    /// The pipeline, built now if it was not yet. A failed build is returned and tried
    /// again on the next call.
    pub(crate) fn get(&self, gpu: &Gpu) -> Result<wgpu::ComputePipeline> {
        // A panic elsewhere while the lock was held cannot leave a half-built pipeline in
        // the slot (it holds an Option), so a poisoned lock is safe to reuse.
        let mut slot = self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p = build(gpu, self.file, self.entry, &self.layout)?;
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Whether [`LazyPipeline::get`] has built it.
    pub(crate) fn is_built(&self) -> bool {
        self.built.lock().map(|s| s.is_some()).unwrap_or(false)
    }
}

/// Builds `pipelines` that are not built yet, several at a time. Drivers that compile in
/// `create_compute_pipeline` (hardware Vulkan, Metal, DX12) do so on as many threads as we
/// call from; wgpu's GL backend serializes on its context lock, and Mesa's software Vulkan
/// driver compiles at the first launch instead, so there this costs nothing and gains nothing.
pub(crate) fn build_all(gpu: &Gpu, pipelines: &[&LazyPipeline]) -> Result<()> {
    use rayon::prelude::*;
    pipelines.par_iter().filter(|p| !p.is_built()).try_for_each(|p| p.get(gpu).map(drop))
}

/// One compute pipeline: entry point `entry` of `file`, with `layout`, inside error scopes.
fn build(
    gpu: &Gpu,
    file: &str,
    entry: &str,
    layout: &wgpu::BindGroupLayout,
) -> Result<wgpu::ComputePipeline> {
    let source = shader_source(file)?;
    let module = gpu.scoped(&format!("compiling {file}"), || {
        gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(file),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        })
    })?;
    let pipeline_layout = gpu.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(file),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    gpu.scoped(&format!("building pipeline {file}:{entry}"), || {
        gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        })
    })
}

/// A small uniform buffer holding `value`, created once when a dispatch is recorded.
pub(crate) fn uniform<T: bytemuck::Pod>(gpu: &Gpu, label: &str, value: &T) -> Result<wgpu::Buffer> {
    let bytes = bytemuck::bytes_of(value);
    let buffer = gpu.scoped(&format!("creating uniform `{label}`"), || {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len().max(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    })?;
    gpu.write(&buffer, 0, bytes);
    Ok(buffer)
}

/// A binding of a whole buffer, of `size` bytes at `offset`, or of a texture view.
pub(crate) enum Bind<'a> {
    Whole(&'a wgpu::Buffer),
    Range(&'a wgpu::Buffer, u64, u64),
    Texture(&'a wgpu::TextureView),
}

pub(crate) fn bind_group(
    gpu: &Gpu,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    binds: &[Bind<'_>],
) -> Result<wgpu::BindGroup> {
    let entries: Vec<wgpu::BindGroupEntry> = binds
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: match b {
                Bind::Whole(buf) => buf.as_entire_binding(),
                Bind::Range(buf, offset, size) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: buf,
                    offset: *offset,
                    size: wgpu::BufferSize::new(*size),
                }),
                Bind::Texture(view) => wgpu::BindingResource::TextureView(view),
            },
        })
        .collect();
    gpu.scoped(&format!("binding `{label}`"), || {
        gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    })
}

/// A recorded kernel launch: pipeline, bindings (including its own uniform) and grid, and
/// the launches that must run right before it (packing its operands into textures).
/// Recorded once, replayed every step.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub(crate) label: &'static str,
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) bind_group: wgpu::BindGroup,
    pub(crate) workgroups: [u32; 3],
    pub(crate) before: Vec<Dispatch>,
}

impl Dispatch {
    /// A launch with nothing to run before it.
    pub(crate) fn new(
        label: &'static str,
        pipeline: wgpu::ComputePipeline,
        bind_group: wgpu::BindGroup,
        workgroups: [u32; 3],
    ) -> Self {
        Dispatch { label, pipeline, bind_group, workgroups, before: Vec::new() }
    }

    /// Records this launch, after the launches it depends on, into an open compute pass.
    /// wgpu orders dispatches within a pass by their resource usage, so a texture written
    /// by one is complete before the next reads it.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.before {
            d.encode(pass);
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// The kernel's name, for reports.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Kernel launches this dispatch encodes (itself and those before it).
    pub fn launches(&self) -> usize {
        1 + self.before.iter().map(Dispatch::launches).sum::<usize>()
    }

    /// Each launch on its own, in encoding order (to time them one by one).
    pub fn flatten(&self) -> Vec<Dispatch> {
        let mut out: Vec<Dispatch> = self.before.iter().flat_map(Dispatch::flatten).collect();
        out.push(Dispatch { before: Vec::new(), ..self.clone() });
        out
    }
}

/// Encodes `dispatches` in one compute pass and submits them.
pub fn submit(gpu: &Gpu, dispatches: &[&Dispatch]) {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for d in dispatches {
            d.encode(&mut pass);
        }
    }
    gpu.queue.submit([encoder.finish()]);
}

/// Workgroups for `len` invocations of a 1-D kernel of width `wg`, folded into y past
/// wgpu's 65535-per-dimension limit (the shaders rebuild the index from `num_workgroups`).
pub(crate) fn grid_1d(len: usize, wg: usize) -> [u32; 3] {
    let groups = len.div_ceil(wg).max(1);
    if groups <= 65535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

/// Converts a size to the u32 the shaders index with, or a shape error.
pub(crate) fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Shape(format!("{what} = {v} does not fit the GPU's 32-bit indices")))
}

/// Checks that `len` floats at offset `off` fit in `buf` (and that `len` is not zero).
/// Overflow-safe: an absurd offset is a shape error, not a wrap-around.
pub(crate) fn check_fits(what: &str, (buf, off): (&wgpu::Buffer, usize), len: usize) -> Result<()> {
    let floats = (buf.size() / 4) as usize;
    if len == 0 || off.checked_add(len).is_none_or(|end| end > floats) {
        return Err(Error::Shape(format!("{what}: {len} floats at offset {off}, buffer holds {floats}")));
    }
    Ok(())
}
