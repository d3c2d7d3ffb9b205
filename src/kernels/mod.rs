//! GPU kernels: one host wrapper per shader family, each owning its pipelines (built once per
//! device) and recording [`Dispatch`]es that the trainer replays every step.

mod activation;
pub mod autotune;
mod gather;
mod matmul;
mod matmul_texture;
mod optim;
mod pipeline;
mod reduce;
mod softmax_xent;

pub use activation::ActivationKernels;
pub use autotune::{Autotuner, TuneRecord};
pub use gather::{pack_pixels, pixel_lut, pixel_lut_buffer, Gather, GatherSources, GatherStep};
pub use matmul::{Matmul, MatmulCall, Variant};
pub use optim::{Optim, OptimBuffers, StepUniform};
pub use pipeline::{requirements, shader_source, submit, Dispatch, SHADERS};
pub use reduce::Reduce;
pub use softmax_xent::{SoftmaxXent, XentCall};

use crate::device::Gpu;
use crate::error::Result;

/// Every pipeline of one device, built once.
pub struct Kernels {
    /// Matrix products, every variant.
    pub matmul: Matmul,
    /// Element-wise activation forward and backward.
    pub activation: ActivationKernels,
    /// Fused softmax cross-entropy.
    pub xent: SoftmaxXent,
    /// Column sums and element-wise gradient helpers.
    pub reduce: Reduce,
    /// Adam and SGD over flat buffers.
    pub optim: Optim,
    /// Batch assembly from the resident dataset.
    pub gather: Gather,
    /// The matmul variant chosen per shape class on this device.
    pub tuner: Autotuner,
}

impl Kernels {
    /// Builds every pipeline on `gpu`.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Kernels {
            matmul: Matmul::new(gpu)?,
            activation: ActivationKernels::new(gpu)?,
            xent: SoftmaxXent::new(gpu)?,
            reduce: Reduce::new(gpu)?,
            optim: Optim::new(gpu)?,
            gather: Gather::new(gpu)?,
            tuner: Autotuner::default(),
        })
    }

    /// Records `call` with the variant the autotuner picks for it on this device.
    pub fn matmul(&self, gpu: &Gpu, call: &MatmulCall<'_>) -> Result<Dispatch> {
        self.matmul_with(gpu, call, None)
    }

    /// [`Kernels::matmul`] with A possibly already packed into a texture (see
    /// [`Matmul::record_with`]).
    pub(crate) fn matmul_with(
        &self,
        gpu: &Gpu,
        call: &MatmulCall<'_>,
        a_packed: Option<&wgpu::Texture>,
    ) -> Result<Dispatch> {
        let variant = self.tuner.choose(gpu, &self.matmul, call)?;
        self.matmul.record_with(gpu, variant, call, a_packed)
    }

    /// Whether the autotuner's pick for `call` reads its operands from textures.
    pub(crate) fn matmul_uses_textures(&self, gpu: &Gpu, call: &MatmulCall<'_>) -> Result<bool> {
        Ok(self.tuner.choose(gpu, &self.matmul, call)?.reads_textures())
    }
}
