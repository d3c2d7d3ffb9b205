//! The wgpu side: adapter discovery and devices (public: an application picks or hands in its
//! own), and, internal to the crate, the kernels (one host wrapper per shader), data sets
//! resident on a device, and the model on one device with its recorded step plans.
//! [`profile`] measures products and training steps without exposing any of those.

mod device;
pub(crate) mod device_data;
mod executor;
pub(crate) mod kernels;
pub mod profile;
pub(crate) mod replica;

pub use device::{enumerate, instance, list_adapters, open, select, AdapterReport, AdapterSelection, Gpu};
pub(crate) use executor::DeviceExecutor;
pub use kernels::TuningCache;
