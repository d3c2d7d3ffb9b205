//! The wgpu side: adapter discovery and devices, the kernels (one host wrapper per shader),
//! datasets resident on a device, and the model on one device with its recorded step plans.

mod device;
pub mod device_data;
mod executor;
pub mod kernels;
pub mod profile;
pub mod replica;

pub use device::{enumerate, instance, list_adapters, open, select, AdapterReport, AdapterSelection, Gpu};
pub(crate) use executor::DeviceExecutor;
