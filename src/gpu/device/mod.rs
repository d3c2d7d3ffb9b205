//! Devices: adapter discovery and selection, and the [`Gpu`] wrapper that turns wgpu's
//! callbacks and panics into errors.

mod discovery;
mod handle;

pub use discovery::{enumerate, instance, select, AdapterReport, AdapterSelection};
pub use handle::Gpu;

use crate::error::Result;

/// Opens one device per selected adapter, `per_adapter` logical devices on each (more than
/// one is how data parallel is tested on a single adapter).
pub fn open(selection: &AdapterSelection, per_adapter: usize) -> Result<Vec<Gpu>> {
    let instance = instance();
    let adapters = enumerate(&instance);
    let reports: Vec<AdapterReport> = adapters.iter().map(|(_, r)| r.clone()).collect();
    let picked = select(&reports, selection)?;
    let mut gpus = Vec::new();
    for i in picked {
        let (adapter, report) = &adapters[i];
        for _ in 0..per_adapter.max(1) {
            gpus.push(Gpu::open(adapter, report.clone())?);
        }
    }
    Ok(gpus)
}

/// Reports of every adapter wgpu can see.
pub fn list_adapters() -> Vec<AdapterReport> {
    enumerate(&instance()).into_iter().map(|(_, r)| r).collect()
}
