//! GPU kernels: one host wrapper per shader family, each owning its pipelines (built on their
//! first use, once per device) and recording [`Dispatch`]es that the trainer replays every
//! step; the autotuner choosing matmul variants, its shipped choices for software drivers and
//! its cache on disk.

mod activation;
pub mod autotune;
mod dense_backward;
mod dropout;
mod gather;
mod gather_targets;
mod gather_values;
mod matmul;
mod matmul_texture;
mod matmul_variant;
mod measure;
mod optim;
mod pipeline;
mod reduce;
mod regression_loss;
mod shipped;
mod sigmoid_xent;
mod softmax_head;
mod softmax_xent;
mod tuning_cache;

pub use activation::ActivationKernels;
pub use autotune::Autotuner;
#[cfg(test)]
pub use autotune::TuneSource;
pub use dense_backward::{dense_backward_fits, DenseBackward, DenseBackwardCall};
pub use dropout::{DropoutCall, DropoutKernels};
pub use gather::{pack_pixels, pixel_lut_buffer, Gather, GatherSources, GatherStep, WeightPack};
pub use gather_targets::{GatherTargets, TargetSources};
pub use gather_values::{GatherValues, ValueSources};
pub use matmul::{Matmul, MatmulCall, Packed, Variant};
pub use matmul_texture::OperandTexture;
pub use optim::{Optim, OptimBuffers, StepUniform};
#[cfg(test)]
pub use pipeline::{requirements, shader_source, SHADERS};
pub use pipeline::{submit, Dispatch};
pub use reduce::Reduce;
pub use regression_loss::{regression_slot_len, RegressionCall, RegressionKind, RegressionLoss};
pub use sigmoid_xent::{SigmoidTargets, SigmoidXent, SigmoidXentCall, SIGMOID_SLOT_LEN};
pub use softmax_head::{head_fits, HeadCall, SoftmaxHead};
pub use softmax_xent::{SoftmaxXent, XentCall};
pub use tuning_cache::TuningCache;

use crate::error::Result;
use crate::gpu::Gpu;

/// Every pipeline of one device, each built the first time it is recorded.
pub struct Kernels {
    /// Matrix products, every variant.
    pub matmul: Matmul,
    /// Element-wise activation forward and backward.
    // The dense layer fuses its activation into its product; these kernels (tested like the
    // others) are for a layer with no product to fuse into.
    #[cfg_attr(not(test), allow(dead_code))]
    pub activation: ActivationKernels,
    /// A narrow dense layer's backward (dW, db and dX) in one launch (built on first use).
    pub dense_backward: DenseBackward,
    /// Inverted dropout's forward and backward (built on first use).
    pub dropout: DropoutKernels,
    /// Fused softmax cross-entropy.
    pub xent: SoftmaxXent,
    /// The last dense layer and softmax cross-entropy in one launch, for narrow outputs.
    pub head: SoftmaxHead,
    /// Mean squared error, mean absolute error and Huber's loss (built on first use).
    pub regression: RegressionLoss,
    /// Sigmoid cross-entropy, binary and multi-label (built on first use).
    pub sigmoid_xent: SigmoidXent,
    /// Column sums and element-wise gradient helpers.
    pub reduce: Reduce,
    /// Adam and SGD over flat buffers.
    pub optim: Optim,
    /// Batch assembly from the resident dataset.
    pub gather: Gather,
    /// Batch assembly from a resident table of f32 features (built on first use).
    pub gather_values: GatherValues,
    /// A batch's f32 regression targets from the resident ones (built on first use).
    pub gather_targets: GatherTargets,
    /// The matmul variant chosen per shape class on this device.
    pub tuner: Autotuner,
}

impl Kernels {
    /// The kernels of `gpu`: bind-group layouts now, pipelines when first recorded, and an
    /// autotuner with the decisions of `gpu`'s tuning cache.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Kernels {
            matmul: Matmul::new(gpu)?,
            activation: ActivationKernels::new(gpu)?,
            dense_backward: DenseBackward::new(gpu)?,
            dropout: DropoutKernels::new(gpu)?,
            xent: SoftmaxXent::new(gpu)?,
            head: SoftmaxHead::new(gpu)?,
            regression: RegressionLoss::new(gpu)?,
            sigmoid_xent: SigmoidXent::new(gpu)?,
            reduce: Reduce::new(gpu)?,
            optim: Optim::new(gpu)?,
            gather: Gather::new(gpu)?,
            gather_values: GatherValues::new(gpu)?,
            gather_targets: GatherTargets::new(gpu)?,
            tuner: Autotuner::for_device(gpu),
        })
    }

    /// Records `call` with the variant the autotuner picks for it on this device, with
    /// operands possibly already packed into textures (see [`Matmul::record_with`]).
    pub(crate) fn matmul_with(
        &self,
        gpu: &Gpu,
        call: &MatmulCall<'_>,
        packed: Packed<'_>,
    ) -> Result<Dispatch> {
        self.matmul_with_sums(gpu, call, packed, None)
    }

    /// [`Kernels::matmul_with`], and with `sums` the column sums of B written in the same
    /// launch (see [`Matmul::record_with_sums`]).
    pub(crate) fn matmul_with_sums(
        &self,
        gpu: &Gpu,
        call: &MatmulCall<'_>,
        packed: Packed<'_>,
        sums: Option<usize>,
    ) -> Result<Dispatch> {
        // Priced with A as it arrives; a B packed ahead only saves the chosen texture variant
        // a launch, so it does not change the choice.
        let variant = self.tuner.choose_packed(gpu, &self.matmul, call, packed.a.is_some())?;
        if (packed.a.is_some() || packed.b.is_some()) && !variant.reads_textures() {
            // The caller packed an operand (and may not have written its buffer) because the
            // tuner chose a texture variant; a different choice now would read a stale buffer.
            return Err(crate::error::Error::Config(format!(
                "an operand was packed into a texture for {}, but the tuner now picks {}",
                call.form.name(),
                variant.name()
            )));
        }
        self.matmul.record_with_sums(gpu, variant, call, packed, sums)
    }

    /// Whether the autotuner's pick for `call`, with A arriving packed into a texture
    /// (`a_packed`) or not, is a texture variant: then the caller may pack an operand, once,
    /// for it and for the other products that read it (`src/gpu/replica/operands.rs`).
    pub(crate) fn matmul_reads_textures(
        &self,
        gpu: &Gpu,
        call: &MatmulCall<'_>,
        a_packed: bool,
    ) -> Result<bool> {
        Ok(self.tuner.choose_packed(gpu, &self.matmul, call, a_packed)?.reads_textures())
    }
}

#[cfg(test)]
pub(crate) mod tests;
