//! The loss a replica records after the forward pass, and the layout of its metrics slot:
//! each loss's kernel, what it reads (class labels, or f32 targets gathered beside the
//! features) and how its slot becomes a pass's sums.

use super::Replica;
use crate::error::Result;
use crate::exec::PassSums;
use crate::gpu::kernels::{
    regression_slot_len, Dispatch, RegressionCall, RegressionKind, SigmoidTargets, SigmoidXentCall, XentCall,
    SIGMOID_SLOT_LEN,
};
use crate::spec::Loss;

/// Floats of one pass's metrics: the softmax cross-entropy's `[loss sum, correct]`, the
/// sigmoid cross-entropy's `[loss sum, right outputs]`, or a regression loss's loss sum and
/// per-output sums ([`regression_slot_len`]). The buffer holds the training pass's slot, then
/// the evaluation's.
pub(super) fn slot_len(loss: Loss, outputs: usize) -> usize {
    match loss {
        Loss::SoftmaxCrossEntropy => 2,
        Loss::SigmoidCrossEntropy => SIGMOID_SLOT_LEN,
        _ => regression_slot_len(outputs),
    }
}

/// A pass's sums from its metrics slot (rows left at 0 for the caller). The sigmoid
/// cross-entropy's right outputs count as a fraction of a row each, as the CPU executor
/// counts them, so that `correct / rows` is the binary accuracy.
pub(super) fn pass_sums(loss: Loss, outputs: usize, slot: &[f32]) -> PassSums {
    let loss_sum = slot[0] as f64;
    match loss {
        Loss::SoftmaxCrossEntropy => {
            PassSums { loss: loss_sum, correct: slot[1] as f64, rows: 0, task: Vec::new() }
        }
        Loss::SigmoidCrossEntropy => {
            PassSums { loss: loss_sum, correct: slot[1] as f64 / outputs as f64, rows: 0, task: Vec::new() }
        }
        _ => PassSums {
            loss: loss_sum,
            correct: 0.0,
            rows: 0,
            task: slot[1..].iter().map(|&s| s as f64).collect(),
        },
    }
}

impl Replica {
    /// Records the loss over the last layer's outputs `h[last]: [rows, outputs]`, writing
    /// their gradient into `dz[last]` when training (scaled for a mean over `scale_rows`
    /// rows) and adding to the pass's metrics slot. `f32_targets` says whether the batch's
    /// targets were gathered as f32 into `yv` (regression values, multi-hot rows) rather
    /// than as u32 labels into `y`.
    pub(super) fn record_loss(
        &self,
        rows: usize,
        train: bool,
        scale_rows: usize,
        f32_targets: bool,
    ) -> Result<Dispatch> {
        let (g, k, w) = (&self.gpu, &self.kernels, &self.work);
        let last = self.spec.layers.len() - 1;
        let outputs = self.spec.outputs();
        let metrics = (&self.metrics, self.metrics_slot(train));
        let (z, dz) = ((&w.h[last], 0), train.then_some((&w.dz[last], 0)));
        // Every loss but the softmax is a mean over rows and outputs.
        let scale = 1.0 / (scale_rows as f32 * outputs as f32);
        let regression = |kind| {
            // dpred = loss'(pred - y) / (rows * outputs): [rows, outputs], 2 (pred - y) for the
            // mean squared error; metrics += (loss sum, per-output sums)
            let call =
                RegressionCall { kind, rows, outputs, pred: z, y: (&w.yv, 0), dpred: dz, scale, metrics };
            k.regression.record(g, &call)
        };
        match self.loss {
            // dlogits = (softmax - onehot) / rows: [rows, classes]; metrics += (loss sum, correct)
            Loss::SoftmaxCrossEntropy => k.xent.record(
                g,
                &XentCall {
                    rows,
                    classes: outputs,
                    logits: z,
                    labels: (&w.y, 0),
                    dlogits: dz,
                    scale: 1.0 / scale_rows as f32,
                    metrics,
                },
            ),
            Loss::MeanSquaredError => regression(RegressionKind::Mse),
            Loss::MeanAbsoluteError => regression(RegressionKind::Mae),
            Loss::Huber { delta } => regression(RegressionKind::Huber(delta)),
            // dlogits = (sigmoid - y) / (rows * outputs); metrics += (loss sum, right outputs)
            Loss::SigmoidCrossEntropy => {
                let targets = if f32_targets {
                    SigmoidTargets::Values(&w.yv, 0)
                } else {
                    SigmoidTargets::Labels(&w.y, 0)
                };
                let call = SigmoidXentCall { rows, outputs, logits: z, targets, dlogits: dz, scale, metrics };
                k.sigmoid_xent.record(g, &call)
            }
        }
    }
}
