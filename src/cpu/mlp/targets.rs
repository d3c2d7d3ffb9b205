//! [`CpuMlp`] trained and evaluated on f32 targets `[rows, outputs]` with any loss that reads
//! them: the mean squared error, the mean absolute error, Huber's loss (regression values)
//! and the sigmoid cross-entropy (0/1 targets, binary or multi-label). One forward-loss-
//! backward pass (`through_loss`) serves them all; only the loss function differs.
//!
//! Each loss leaves its batch's task sums in a caller's buffer of [`task_sums_len`] floats:
//! the regression losses' [`MSE_SUMS`] per-output sums, the sigmoid cross-entropy's count of
//! outputs predicted right ([`SIGMOID_SUMS`]).

use super::{CpuMlp, Pass, EVAL_CHUNK};
use crate::cpu::layers::LayerInput;
use crate::cpu::threads::on_pool;
use crate::cpu::{
    check_len, elements, regression_into, sigmoid_xent_into, RegressionKind, MSE_SUMS, SIGMOID_SUMS,
};
use crate::error::{Error, Result};
use crate::spec::Loss;

/// Floats of one batch's task sums for `loss` on `outputs` outputs (0 for the softmax
/// cross-entropy, whose loss and correct count need none).
pub fn task_sums_len(loss: Loss, outputs: usize) -> usize {
    match loss {
        Loss::SoftmaxCrossEntropy => 0,
        Loss::SigmoidCrossEntropy => SIGMOID_SUMS,
        _ => MSE_SUMS * outputs,
    }
}

/// `loss` of `z` against `y` (both `[rows, outputs]`): returns the loss sum over rows, sets
/// `sums` to the batch's task sums, and writes the gradient into `dz` when given.
fn loss_into(
    loss: Loss,
    z: &[f32],
    y: &[f32],
    outputs: usize,
    scale: f32,
    sums: &mut [f32],
    dz: Option<&mut [f32]>,
) -> Result<f32> {
    match loss {
        Loss::MeanSquaredError => regression_into(RegressionKind::Mse, z, y, outputs, scale, sums, dz),
        Loss::MeanAbsoluteError => regression_into(RegressionKind::Mae, z, y, outputs, scale, sums, dz),
        Loss::Huber { delta } => {
            regression_into(RegressionKind::Huber(delta), z, y, outputs, scale, sums, dz)
        }
        Loss::SigmoidCrossEntropy => {
            check_len("sigmoid sums", sums.len(), SIGMOID_SUMS)?;
            let (l, right) = sigmoid_xent_into(z, y, outputs, scale, dz)?;
            // A count below 2^24 per batch: exact in f32.
            sums[0] = right as f32;
            Ok(l)
        }
        _ => Err(Error::Config(format!(
            "{} trains on class labels, not f32 targets; use compute_gradients",
            loss.describe()
        ))),
    }
}

impl CpuMlp {
    /// [`CpuMlp::compute_gradients`] for a loss on f32 targets `y: [rows, outputs]` (the
    /// regression losses' values, or the sigmoid cross-entropy's 0/1): `sums` (of
    /// [`task_sums_len`] floats) receives the batch's task sums. Returns the loss sum over
    /// rows; gradients are those of `loss_sum / (scale_rows * outputs)`.
    pub fn compute_gradients_with(
        &mut self,
        loss: Loss,
        x: &[f32],
        y: &[f32],
        scale_rows: usize,
        sums: &mut [f32],
    ) -> Result<f32> {
        on_pool(|| {
            self.gradients_with_here(loss, LayerInput::Whole(x), y, (scale_rows, 0), sums, Pass::Gradients)
        })
    }

    /// [`CpuMlp::compute_gradients_with`] for the rows of a global batch that start at
    /// position `first_row` in it (a data-parallel shard's share): dropout draws those rows'
    /// masks, as one executor computing the whole batch would.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn compute_gradients_with_from(
        &mut self,
        loss: Loss,
        (x, y): (&[f32], &[f32]),
        scale_rows: usize,
        first_row: usize,
        sums: &mut [f32],
    ) -> Result<f32> {
        let rows = (scale_rows, first_row);
        on_pool(|| self.gradients_with_here(loss, LayerInput::Whole(x), y, rows, sums, Pass::Gradients))
    }

    fn gradients_with_here(
        &mut self,
        loss: Loss,
        x: LayerInput<'_>,
        y: &[f32],
        (scale_rows, first_row): (usize, usize),
        sums: &mut [f32],
        pass: Pass,
    ) -> Result<f32> {
        let outputs = self.spec.outputs();
        let rows = y.len() / outputs;
        check_len("targets y", y.len(), elements("targets y", rows, outputs)?)?;
        let scale = 1.0 / (scale_rows as f32 * outputs as f32);
        self.through_loss(x, rows, (scale_rows, first_row), pass, |z, dz, outputs| {
            loss_into(loss, z, y, outputs, scale, sums, Some(dz))
        })
    }

    /// [`CpuMlp::compute_gradients_with`] over the batch's own rows, then
    /// [`CpuMlp::apply_update`] (fused into the backward pass, with the same bits).
    pub fn train_step_with(&mut self, loss: Loss, x: &[f32], y: &[f32], sums: &mut [f32]) -> Result<f32> {
        on_pool(|| self.train_step_with_here(loss, LayerInput::Whole(x), y, sums))
    }

    /// [`CpuMlp::train_step_with`] on the calling thread, with the inputs whole or in the
    /// first layer's halves (the CPU executor's gather).
    pub(crate) fn train_step_with_here(
        &mut self,
        loss: Loss,
        x: LayerInput<'_>,
        y: &[f32],
        sums: &mut [f32],
    ) -> Result<f32> {
        let rows = y.len() / self.spec.outputs();
        self.gradients_with_here(loss, x, y, (rows, 0), sums, Pass::Step)
    }

    /// Forward only: the loss sum of `loss` over `x: [rows, inputs]` and `y: [rows, outputs]`,
    /// with `sums` set to the task sums, in chunks of at most 1000 rows added in order.
    /// Gradients are left untouched.
    pub fn evaluate_with(&mut self, loss: Loss, x: &[f32], y: &[f32], sums: &mut [f32]) -> Result<f32> {
        on_pool(|| self.evaluate_with_here(loss, LayerInput::Whole(x), y, sums))
    }

    /// [`CpuMlp::evaluate_with`] on the calling thread, with the inputs whole or in halves.
    pub(crate) fn evaluate_with_here(
        &mut self,
        loss: Loss,
        x: LayerInput<'_>,
        y: &[f32],
        sums: &mut [f32],
    ) -> Result<f32> {
        let outputs = self.spec.outputs();
        let rows = y.len() / outputs;
        check_len("targets y", y.len(), elements("targets y", rows, outputs)?)?;
        check_len("task sums", sums.len(), task_sums_len(loss, outputs))?;
        let mut chunk_sums = vec![0.0f32; sums.len()];
        sums.fill(0.0);
        let mut loss_sum = 0.0f32;
        self.forward_chunks(x, rows, |i, z, outputs| {
            let y = &y[i * EVAL_CHUNK * outputs..][..z.len()];
            loss_sum += loss_into(loss, z, y, outputs, 0.0, &mut chunk_sums, None)?;
            sums.iter_mut().zip(&chunk_sums).for_each(|(s, c)| *s += c);
            Ok(())
        })?;
        Ok(loss_sum)
    }
}
