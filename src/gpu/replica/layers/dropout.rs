//! [`Layer::Dropout`](crate::spec::Layer::Dropout) on the GPU: the forward (a copy in
//! evaluation) and the backward, which draws the mask again and applies the layer below's
//! activation derivative in the same kernel (`shaders/dropout.wgsl`). The CPU twin is
//! `cpu/layers/dropout.rs`; why the mask is drawn again rather than stored is said there.
//!
//! The masks' step and row base come from the per-launch gather uniform, so one recorded plan
//! draws each step's own masks.

use super::super::Replica;
use super::OutputGrad;
use crate::error::{Error, Result};
use crate::gpu::kernels::{Dispatch, DropoutCall};
use crate::spec::{Activation, DropoutMask};

impl Replica {
    /// The call of dropout layer `l` over `rows` rows, from `x` into `out`.
    fn dropout_call<'a>(
        &'a self,
        l: usize,
        rows: usize,
        x: &'a wgpu::Buffer,
        out: &'a wgpu::Buffer,
    ) -> Result<DropoutCall<'a>> {
        let layer = &self.spec.layers[l];
        let mask = DropoutMask::of_layer(layer, l, 0)
            .ok_or_else(|| Error::Config(format!("layer {l} is not a dropout layer")))?;
        let units = self.spec.layers[..=l].iter().fold(self.spec.inputs, |w, layer| layer.outputs(w));
        Ok(DropoutCall { rows, units, mask, step: &self.gather_step, x: (x, 0), out: (out, 0) })
    }

    /// Layer `l`'s forward: `h_l = keep ? h_{l-1} * scale : 0` in training, `h_l = h_{l-1}`
    /// in evaluation (with `h_{-1}` the batch).
    pub(in crate::gpu::replica) fn dropout_forward(
        &self,
        l: usize,
        rows: usize,
        train: bool,
    ) -> Result<Dispatch> {
        let w = &self.work;
        let input = if l == 0 { &w.x } else { &w.h[l - 1] };
        let call = self.dropout_call(l, rows, input, &w.h[l])?;
        self.kernels.dropout.forward(&self.gpu, &call, train)
    }

    /// Layer `l`'s backward from `dz_l`, the gradient of its output, into the layer below as
    /// it asks: `dz_{l-1} = (keep ? dz_l * scale : 0) * act'_{l-1}(z_{l-1})`.
    pub(in crate::gpu::replica) fn dropout_backward(
        &self,
        l: usize,
        rows: usize,
        below: OutputGrad<'_>,
    ) -> Result<Dispatch> {
        let call = self.dropout_call(l, rows, &self.work.dz[l], below.dz)?;
        self.kernels.dropout.backward(&self.gpu, &call, (below.z, 0), below.activation)
    }

    /// How dropout layer `l` takes the gradient of its output: into `dz_l` as it is (the
    /// identity's derivative, 1, read at `h_l`, which is never used).
    pub(in crate::gpu::replica) fn dropout_output_grad(&self, l: usize) -> OutputGrad<'_> {
        let w = &self.work;
        OutputGrad { dz: &w.dz[l], activation: Activation::Identity, z: &w.h[l] }
    }
}
