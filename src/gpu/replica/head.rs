//! The softmax head fused: under [`Loss::SoftmaxCrossEntropy`], the last dense layer's
//! product (bias epilogue) and the loss recorded as one launch (`kernels/softmax_head.rs`)
//! instead of two, when the output is narrow. Same bits as the two launches: the fused kernel
//! performs the same f32 operations in the same order (see `shaders/softmax_head.wgsl`).

use super::Replica;
use crate::error::Result;
use crate::gpu::kernels::{head_fits, Dispatch, HeadCall};
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

    /// The last layer's forward and the loss in one launch: `logits = h W + b`, and
    /// `dlogits = (softmax - onehot) / scale_rows` when training; metrics at `metrics_slot`
    /// `+= (loss sum, correct)`. The operands are those of the layer's own forward call.
    pub(super) fn record_head(&self, rows: usize, train: bool, scale_rows: usize) -> Result<Dispatch> {
        let last = self.spec.layers.len() - 1;
        let fwd = self.dense_forward_call(last, Activation::Identity, rows)?;
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
        };
        self.kernels.head.record(&self.gpu, &call)
    }

    /// Records the fused launches (`true`, the default: this head, the bias gradients in the
    /// weight-gradient products of `layers/dense.rs`, and a narrow layer's backward in one
    /// launch there) or each step as separate launches
    /// (to compare the two); drops the plans recorded so far.
    #[cfg(test)]
    pub(crate) fn set_fused(&mut self, on: bool) {
        self.fuse = on;
        self.plans.clear();
    }
}
