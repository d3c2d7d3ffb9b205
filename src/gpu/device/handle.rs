//! One device and queue, with the bookkeeping that turns wgpu's panics and callbacks into
//! [`Error`]s: error scopes around resource creation, a device-lost flag, an uncaptured-error
//! slot (wgpu's default handler panics), bounded waits, and limit checks on buffers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::discovery::AdapterReport;
use crate::error::{Error, Result};
use crate::gpu::kernels::TuningCache;

/// How long a wait on the GPU may take before we call the device hung. Generous: a
/// software adapter can take seconds for one large submission.
const WAIT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Health {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Option<String>>,
}

/// A device, its queue and what we know of its adapter. Cheap to clone (wgpu handles are
/// reference counted); clones share the health flags.
#[derive(Clone)]
pub struct Gpu {
    /// The wgpu device. Create resources through [`Gpu::scoped`] (or the buffer helpers) so
    /// that errors come back as [`Error`]s instead of going to the uncaptured-error slot.
    pub device: wgpu::Device,
    /// The device's queue; every submission of wgtrain goes through it.
    pub queue: wgpu::Queue,
    /// What the adapter is and its limits; its [`label`](AdapterReport::label) names the
    /// device in errors.
    pub report: AdapterReport,
    health: Arc<Health>,
    tuning_cache: TuningCache,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.report.label()).finish()
    }
}

impl Gpu {
    /// Wraps a device the application created. Installs a device-lost callback and an
    /// uncaptured-error handler that records instead of panicking.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let report = AdapterReport::of_device(&device);
        Self::with_report(device, queue, report)
    }

    pub(crate) fn with_report(device: wgpu::Device, queue: wgpu::Queue, report: AdapterReport) -> Self {
        let health = Arc::new(Health::default());
        let h = Arc::clone(&health);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = h.lost.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        let h = Arc::clone(&health);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = h.uncaptured.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        Gpu { device, queue, report, health, tuning_cache: TuningCache::default() }
    }

    /// This handle with its matmul tuning decisions kept in `cache` (the user's cache folder
    /// unless set). Read when kernels are built on the device, written when the autotuner
    /// measures something new.
    pub fn with_tuning_cache(mut self, cache: TuningCache) -> Self {
        self.tuning_cache = cache;
        self
    }

    /// Where this device's matmul tuning decisions are kept between runs.
    pub fn tuning_cache(&self) -> &TuningCache {
        &self.tuning_cache
    }

    /// Opens a device on `adapter` with every limit the adapter supports (so the storage
    /// binding limit is as large as the hardware allows, not wgpu's 128 MiB default).
    pub fn open(adapter: &wgpu::Adapter, report: AdapterReport) -> Result<Self> {
        let mut features = wgpu::Features::empty();
        if report.timestamp_queries {
            features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        // For the matmul variants that share texel fetches across a subgroup.
        if adapter.features().contains(wgpu::Features::SUBGROUP) {
            features |= wgpu::Features::SUBGROUP;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgtrain"),
            required_features: features,
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::DeviceRequest { adapter: report.label(), reason: e.to_string() })?;
        Ok(Self::with_report(device, queue, report))
    }

    /// Whether shaders on this device can use subgroup operations, in subgroups of exactly
    /// `size` invocations: then a workgroup of `size` is one full subgroup, its invocations
    /// lanes 0 to `size - 1` (a wider subgroup only partly filled does not promise that).
    /// An assumption, not a promise: wgpu creates pipelines allowing a varying subgroup size
    /// and without Vulkan's "require full subgroups", so the spec would let a driver split such a
    /// workgroup; with the size fixed at `size` none is known to, and lavapipe does not (the
    /// subgroup variants' bits equal the naive kernel's in the tests).
    pub(crate) fn has_subgroups_of(&self, size: u32) -> bool {
        let info = self.device.adapter_info();
        self.device.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == size
            && info.subgroup_max_size == size
    }

    /// `Ok` unless the device was lost or an error escaped every scope.
    pub fn check(&self) -> Result<()> {
        if let Some(reason) = self.health.lost.lock().ok().and_then(|s| s.clone()) {
            return Err(Error::DeviceLost { adapter: self.report.label(), reason });
        }
        if let Some(message) = self.health.uncaptured.lock().ok().and_then(|mut s| s.take()) {
            return Err(Error::Gpu {
                adapter: self.report.label(),
                context: "running submitted work".into(),
                message,
            });
        }
        Ok(())
    }

    /// Runs `f` inside validation and out-of-memory error scopes and returns what they caught.
    pub fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::OutOfMemory { adapter: self.report.label(), what: format!("{context}: {e}") });
        }
        if let Some(e) = v {
            return Err(Error::Gpu {
                adapter: self.report.label(),
                context: context.to_string(),
                message: e.to_string(),
            });
        }
        self.check()?;
        Ok(value)
    }

    /// Blocks until all submitted work is done. A device that does not answer within 120 s
    /// (`WAIT_TIMEOUT`) is reported as [`Error::DeviceLost`].
    pub fn wait(&self) -> Result<()> {
        self.poll_wait(None)
    }

    /// Blocks until the submission `index` (and everything before it) is done.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        self.poll_wait(Some(index))
    }

    fn poll_wait(&self, submission_index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        let poll = wgpu::PollType::Wait { submission_index, timeout: Some(WAIT_TIMEOUT) };
        self.device.poll(poll).map_err(|e| match e {
            wgpu::PollError::Timeout => Error::DeviceLost {
                adapter: self.report.label(),
                reason: format!("no answer within {WAIT_TIMEOUT:?} (device hung?)"),
            },
            other => Error::DeviceLost { adapter: self.report.label(), reason: other.to_string() },
        })?;
        self.check()
    }

    /// A storage buffer of `bytes` bytes, checked against the device's limits first so an
    /// oversized request is an error, not a validation panic.
    pub fn storage_buffer(&self, label: &str, bytes: u64, extra: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let limits = self.device.limits();
        let bind_limit = limits.max_storage_buffer_binding_size;
        if bytes > limits.max_buffer_size || bytes > bind_limit {
            return Err(Error::OutOfMemory {
                adapter: self.report.label(),
                what: format!(
                    "buffer `{label}` needs {bytes} bytes; the device allows {} per buffer and {bind_limit} per binding",
                    limits.max_buffer_size
                ),
            });
        }
        // wgpu rejects zero-sized bindings, and vec4 views need whole vec4s: round up to 16 bytes.
        let size = bytes.max(16).next_multiple_of(16);
        self.scoped(&format!("creating buffer `{label}`"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | extra,
                mapped_at_creation: false,
            })
        })
    }

    /// A storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(
        &self,
        label: &str,
        data: &[T],
        extra: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.storage_buffer(label, bytes.len() as u64, extra | wgpu::BufferUsages::COPY_DST)?;
        self.write(&buffer, 0, bytes);
        Ok(buffer)
    }

    /// Queues a write of `bytes` at `offset`; a 4-byte tail is padded with zeros as wgpu requires.
    pub fn write(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        if bytes.len().is_multiple_of(4) {
            self.queue.write_buffer(buffer, offset, bytes);
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().next_multiple_of(4), 0);
            self.queue.write_buffer(buffer, offset, &padded);
        }
    }

    /// Copies `len` elements of `T` starting at element `start` of `buffer` back to the host.
    /// One staging buffer, one wait: call it outside of per-batch loops.
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, start: usize, len: usize) -> Result<Vec<T>> {
        let elem = std::mem::size_of::<T>() as u64;
        let bytes = (len as u64 * elem).next_multiple_of(4).max(4);
        let staging = self.scoped("creating a readback buffer", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, start as u64 * elem, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        self.map_and_read(&staging, len)
    }

    /// Maps a MAP_READ buffer (work that fills it must already be submitted) and returns
    /// its first `len` elements.
    pub fn map_and_read<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer, len: usize) -> Result<Vec<T>> {
        let slot: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let s = Arc::clone(&slot);
        let slice = staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, move |r| {
            if let Ok(mut g) = s.lock() {
                *g = Some(r);
            }
        });
        self.wait()?;
        // Another thread's poll may be the one that runs our callback, slightly after our
        // wait returned: keep polling (bounded) until the callback has reported.
        let deadline = std::time::Instant::now() + WAIT_TIMEOUT;
        while slot.lock().map(|g| g.is_none()).unwrap_or(false) && std::time::Instant::now() < deadline {
            let _ = self.device.poll(wgpu::PollType::Poll);
            std::thread::yield_now();
        }
        let mapped = slot.lock().ok().and_then(|mut g| g.take());
        match mapped {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(Error::Gpu {
                    adapter: self.report.label(),
                    context: "mapping a readback buffer".into(),
                    message: e.to_string(),
                })
            }
            None => {
                return Err(Error::DeviceLost {
                    adapter: self.report.label(),
                    reason: "a readback never completed".into(),
                })
            }
        }
        let out = {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu {
                adapter: self.report.label(),
                context: "reading a mapped buffer".into(),
                message: e.to_string(),
            })?;
            let bytes = &view[..len * std::mem::size_of::<T>()];
            bytemuck::pod_collect_to_vec(bytes)
        };
        staging.unmap();
        Ok(out)
    }
}
