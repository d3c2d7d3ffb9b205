//! The softmax head fused: under [`Loss::SoftmaxCrossEntropy`], the last dense layer's
//! product (bias epilogue) and the loss recorded as one launch (`kernels/softmax_head.rs`)
//! instead of two, when the output is narrow. Same bits as the two launches: the fused kernel
//! performs the same f32 operations in the same order (see `shaders/softmax_head.wgsl`).
//! In training it also takes the layer's backward (dW, db and the input gradient the layer
//! below asks for) where the device binds enough storage buffers and the shape is small
//! (`head_backward_fits`): the launches `layers/dense.rs` records otherwise, with their bits.

use super::Replica;
use crate::error::Result;
use crate::gpu::kernels::{head_backward_fits, head_fits, Dispatch, HeadBackward, HeadCall, HeadInputGrad};
use crate::spec::{Activation, Layer, Loss};

impl Replica {
    /// Whether a pass over `rows` rows records the fused head: the softmax loss on a last
    /// dense layer with the identity activation (its logits), read from a buffer (the first
    /// layer may read the batch from a texture instead), of a shape [`head_fits`] takes.
    pub(super) fn fused_head(&self, rows: usize, x_texture: bool) -> bool {
        let last = self.spec.layers.len() - 1;
        let logits = matches!(self.spec.layers[last], Layer::Dense { activation: Activation::Identity, .. });
        self.fuse
            && self.loss == Loss::SoftmaxCrossEntropy
            && logits
            && !(last == 0 && x_texture)
            && head_fits(rows, self.spec.outputs())
    }

    /// Whether a training pass over `rows` rows whose head is fused takes the last layer's
    /// backward into the head's launch too.
    pub(super) fn fused_head_backward(&self, rows: usize) -> bool {
        let last = self.spec.layers.len() - 1;
        let below = self.output_grad_below(last).is_some();
        self.kernels.head.backward_supported()
            && self
                .layout
                .of_layer(last)
                .is_some_and(|s| head_backward_fits(rows, s.outputs, s.inputs, below))
    }

    /// The last layer's forward and the loss in one launch: `logits = h W + b`, and
    /// `dlogits = (softmax - onehot) / scale_rows` when training; metrics at `metrics_slot`
    /// `+= (loss sum, correct)`. The operands are those of the layer's own forward call.
    /// With `backward`, the launch goes on to the layer's backward, with the operands of
    /// `dense_backward`: dW and db into the gradients, the input gradient to the layer below.
    pub(super) fn record_head(
        &self,
        rows: usize,
        train: bool,
        scale_rows: usize,
        backward: bool,
    ) -> Result<Dispatch> {
        let last = self.spec.layers.len() - 1;
        let fwd = self.dense_forward_call(last, Activation::Identity, rows)?;
        let backward = match (backward, self.layout.of_layer(last)) {
            (true, Some(slots)) => Some(HeadBackward {
                grads: &self.grads,
                dw: slots.weight,
                db: slots.bias,
                dx: self.output_grad_below(last).map(|below| HeadInputGrad {
                    dx: (below.dz, 0),
                    activation: below.activation,
                    z: (below.z, 0),
                }),
            }),
            _ => None,
        };
        let call = HeadCall {
            rows,
            classes: fwd.n,
            k: fwd.k,
            h: fwd.a,
            params: fwd.b,
            bias: fwd.bias.unwrap_or(0),
            logits: fwd.c,
            labels: (&self.work.y, 0),
            dlogits: train.then_some((&self.work.dz[last], 0)),
            scale: 1.0 / scale_rows as f32,
            metrics: (&self.metrics, self.metrics_slot(train)),
            backward,
        };
        self.kernels.head.record(&self.gpu, &call)
    }

    /// Records the fused launches (`true`, the default: this head, and the bias gradients in
    /// the weight-gradient products of `layers/dense.rs`) or each step as separate launches
    /// (to compare the two); drops the plans recorded so far.
    #[cfg(test)]
    pub(crate) fn set_fused(&mut self, on: bool) {
        self.fuse = on;
        self.plans.clear();
    }
}
