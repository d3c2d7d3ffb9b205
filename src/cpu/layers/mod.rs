//! Each layer kind's forward and backward on the CPU: the twins of the GPU recordings in
//! `gpu/replica/layers/`, op for op, so both executors compute the same numbers. The passes
//! in `cpu/pass.rs` drive them from the network's layer list.

use crate::spec::Activation;

pub(super) mod dense;

/// How a layer takes the gradient of its output from the layer above, which computes it:
/// into `dz`, already multiplied by `act'(z)` (the GPU's `OutputGrad`, fused the same way).
#[derive(Debug)]
pub(super) struct OutputGrad<'a> {
    /// The layer's pre-activation gradient, `[rows, outputs]`, written by the layer above.
    pub dz: &'a mut [f32],
    pub activation: Activation,
    /// The layer's pre-activation, `[rows, outputs]`.
    pub z: &'a [f32],
}
