//! What is trained: the network, the task and the optimizer. Plain descriptions with no GPU
//! and no data: every layer above reads them.

mod dropout;
mod network;
mod optimizer;
mod schedule;
mod task;

pub use dropout::{philox4x32_10, DropoutMask};
pub use network::{Activation, Init, Layer, LayerSlots, Network, ParamLayout, TENSOR_ALIGN};
pub use optimizer::{Optimizer, StepScalars};
pub use schedule::LrSchedule;
pub use task::{pixel_lut, pixel_value, Loss, DEFAULT_HUBER_DELTA};
