//! Each layer kind's forward and backward recorded as dispatches: the twins of the CPU's
//! `cpu/layers/`, op for op. `record.rs` drives them from the network's layer list.

pub(super) mod dense;
pub(super) mod dropout;

use crate::spec::Activation;

/// How a layer wants the gradient of its output handed to it by the layer above: the layer
/// above computes `dx` and, in the same product's epilogue, applies this layer's activation
/// derivative, so `dz` arrives ready and costs no launch of its own.
pub(super) struct OutputGrad<'a> {
    /// The layer's pre-activation gradient buffer, `[rows, outputs]`.
    pub dz: &'a wgpu::Buffer,
    /// The layer's activation, whose derivative the epilogue applies.
    pub activation: Activation,
    /// What that derivative reads: the pre-activation `z`, or for the identity the output.
    pub z: &'a wgpu::Buffer,
}
