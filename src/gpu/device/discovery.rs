//! Finding adapters: enumerate every adapter on every backend, describe each, and pick a set
//! by a policy.

use serde::Serialize;

use crate::error::{Error, Result};

/// What the trainer needs to know about an adapter, and what reports print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterReport {
    /// Position in wgpu's enumeration (stable within a process); `usize::MAX` for a device
    /// described by [`AdapterReport::of_device`].
    pub index: usize,
    /// The adapter's name as the driver reports it (`llvmpipe ...` for Mesa's software driver).
    pub name: String,
    /// `vulkan`, `gl`, `metal`, `dx12`, ...
    pub backend: String,
    /// `discrete`, `integrated`, `virtual`, `cpu`, `other`.
    pub device_type: String,
    /// Driver name and version info, joined by a space (may be empty).
    pub driver: String,
    /// Largest storage buffer one binding may see, in bytes: with `max_buffer_size`, the bound
    /// on the largest tensor (data set, parameters, activations of a batch).
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer the adapter can create, in bytes.
    pub max_buffer_size: u64,
    /// Most invocations in one workgroup (wgpu's limit of that name).
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroup shared memory, in bytes (wgpu's limit of that name).
    pub max_compute_workgroup_storage_size: u32,
    /// Whether the adapter supports `TIMESTAMP_QUERY`; [`crate::Gpu::open`] enables it then.
    pub timestamp_queries: bool,
}

impl AdapterReport {
    pub(crate) fn new(index: usize, adapter: &wgpu::Adapter) -> Self {
        Self::from_parts(index, adapter.get_info(), adapter.limits(), adapter.features())
    }

    /// The report of a device an application created itself.
    pub fn of_device(device: &wgpu::Device) -> Self {
        Self::from_parts(usize::MAX, device.adapter_info(), device.limits(), device.features())
    }

    fn from_parts(
        index: usize,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
        features: wgpu::Features,
    ) -> Self {
        AdapterReport {
            index,
            name: info.name,
            backend: info.backend.to_str().to_string(),
            device_type: device_type_name(info.device_type).to_string(),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            timestamp_queries: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        }
    }

    /// `name (backend, device_type)`, for logs.
    pub fn label(&self) -> String {
        format!("{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Which adapters to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdapterSelection {
    /// Every adapter wgpu lists.
    All,
    /// One adapter per physical device, on its best backend; on a machine with only software
    /// adapters, the best one. The default, and what data parallel uses.
    #[default]
    BestPerDevice,
    /// These positions in the enumeration.
    Indices(Vec<usize>),
    /// Every adapter of this backend (`vulkan`, `gl`, `metal`, `dx12`).
    Backend(String),
    /// Discrete GPUs only.
    DiscreteOnly,
}

impl std::str::FromStr for AdapterSelection {
    type Err = Error;

    /// Parses `all`, `best`, `discrete`, a backend name, or a comma list of indices (`0,2`).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "all" => return Ok(AdapterSelection::All),
            "best" | "auto" => return Ok(AdapterSelection::BestPerDevice),
            "discrete" => return Ok(AdapterSelection::DiscreteOnly),
            "vulkan" | "gl" | "metal" | "dx12" => return Ok(AdapterSelection::Backend(s)),
            _ => {}
        }
        let indices: std::result::Result<Vec<usize>, _> =
            s.split(',').map(|p| p.trim().parse::<usize>()).collect();
        match indices {
            Ok(v) if !v.is_empty() => Ok(AdapterSelection::Indices(v)),
            _ => Err(Error::Config(format!(
                "adapter selection `{s}` is not all, best, discrete, vulkan, gl, metal, dx12 \
                 or a comma-separated list of indices"
            ))),
        }
    }
}

/// A new wgpu instance with every backend compiled in (environment overrides honoured).
pub fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter on every backend, with its report.
pub fn enumerate(instance: &wgpu::Instance) -> Vec<(wgpu::Adapter, AdapterReport)> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let r = AdapterReport::new(i, &a);
            (a, r)
        })
        .collect()
}

/// Lower is better: the backend we prefer for the same physical device.
fn backend_rank(backend: &str) -> u32 {
    match backend {
        "vulkan" | "metal" | "dx12" => 0,
        "gl" => 2,
        _ => 1,
    }
}

/// Lower is better: hardware before software.
fn type_rank(device_type: &str) -> u32 {
    match device_type {
        "discrete" => 0,
        "integrated" => 1,
        "virtual" => 2,
        "other" => 3,
        _ => 4, // cpu
    }
}

/// The positions `selection` picks from `reports`, in enumeration order (best first for
/// [`AdapterSelection::BestPerDevice`]). Never empty on success: a selection that matches
/// nothing, or an index past the end, is [`Error::NoAdapter`] listing the adapters seen.
pub fn select(reports: &[AdapterReport], selection: &AdapterSelection) -> Result<Vec<usize>> {
    let picked: Vec<usize> = match selection {
        AdapterSelection::All => reports.iter().map(|r| r.index).collect(),
        AdapterSelection::Indices(ix) => {
            if let Some(bad) = ix.iter().find(|&&i| i >= reports.len()) {
                return Err(Error::NoAdapter {
                    detail: format!(": adapter {bad} asked for, but only {} found", reports.len()),
                });
            }
            ix.clone()
        }
        AdapterSelection::Backend(b) => reports.iter().filter(|r| &r.backend == b).map(|r| r.index).collect(),
        AdapterSelection::DiscreteOnly => {
            reports.iter().filter(|r| r.device_type == "discrete").map(|r| r.index).collect()
        }
        AdapterSelection::BestPerDevice => best_per_device(reports),
    };
    if picked.is_empty() {
        let seen: Vec<String> = reports.iter().map(|r| r.label()).collect();
        return Err(Error::NoAdapter {
            detail: format!(" for selection {selection:?} (adapters seen: {seen:?})"),
        });
    }
    Ok(picked)
}

/// One adapter per physical device. wgpu lists the same GPU once per backend; we group by a
/// normalised name and keep the best backend of each. Software adapters (device type `cpu`)
/// all run on the same cores, so only the best one of them is kept, and only when there is
/// no hardware adapter.
fn best_per_device(reports: &[AdapterReport]) -> Vec<usize> {
    let mut sorted: Vec<&AdapterReport> = reports.iter().collect();
    sorted.sort_by_key(|r| (type_rank(&r.device_type), backend_rank(&r.backend), r.index));
    let hardware = sorted.iter().any(|r| r.device_type != "cpu");
    let mut seen_names: Vec<String> = Vec::new();
    let mut picked = Vec::new();
    for r in sorted {
        if r.device_type == "cpu" && (hardware || !picked.is_empty()) {
            continue;
        }
        let key = normalised_name(&r.name);
        if seen_names.contains(&key) {
            continue;
        }
        seen_names.push(key);
        picked.push(r.index);
    }
    picked
}

/// GL adapters often report the renderer string with extra words ("NVIDIA H100/PCIe/SSE2");
/// keep the leading part so Vulkan and GL names of one GPU compare equal.
fn normalised_name(name: &str) -> String {
    name.split(['/', '(']).next().unwrap_or(name).trim().to_ascii_lowercase()
}
