//! [`CpuMlp`]: a whole MLP trained on the CPU with the ops of this module: the executor used
//! when no GPU adapter exists, and the model-level oracle of the GPU trainer's tests.
//!
//! Parameters, gradients and optimizer moments are flat buffers in the [`ParamLayout`] the GPU
//! uses, so state moves between the backends by copying slices. Activations live in a
//! [`Workspace`] sized for the largest batch seen so far: after the first step of that size,
//! every step (and every smaller one, such as an epoch's last partial batch) reuses them.

mod targets;

pub use targets::task_sums_len;

use std::ops::Range;

use crate::error::{Error, Result};
use crate::spec::{Activation, Layer, Network, ParamLayout};
use crate::spec::{LrSchedule, Optimizer, StepScalars};

use super::aligned::Floats;
use super::gemm::State;
use super::layers::{dense, LayerInput, Params};
use super::optim::{adam_here, sgd_here};
use super::pass::{backward, forward, MaskAt, Workspace};
use super::sparse::{Csr, SparseInput};
use super::threads::on_pool;
use super::{adam_step, check_len, elements, sgd_step, softmax, softmax_xent_into, xent_loss};

/// `evaluate` and `predict` run the forward pass on at most this many rows at a time, so a
/// 10 000-row test set needs activation buffers of 1 000 rows, not 10 000.
const EVAL_CHUNK: usize = 1000;

/// An MLP with its parameters, gradients and optimizer state, trained on the CPU.
///
/// Its products and updates are shared with rayon's threads. Each call made from a thread
/// outside rayon's pool first moves onto one of its threads (tens of microseconds on a VM);
/// a loop of many small steps runs faster inside `rayon::scope(|_| ...)`, whose closure runs
/// on a pool thread, as `examples/cpu_epoch.rs` does.
#[derive(Debug)]
pub struct CpuMlp {
    spec: Network,
    layout: ParamLayout,
    /// The update rule; its `lr` is the base rate `schedule` shapes per step.
    optimizer: Optimizer,
    schedule: LrSchedule,
    /// Flat parameters in `layout` order; padding slots are zero. This and the three below
    /// start on a cache line (see `aligned.rs`).
    params: Floats,
    /// Gradients of the last `compute_gradients`, same layout; padding stays zero.
    grads: Floats,
    /// Adam's first moment, or SGD's momentum buffer.
    m: Floats,
    /// Adam's second moment (kept at full length, and zero, for SGD so that the state has one
    /// shape whatever the optimizer).
    v: Floats,
    /// Optimizer steps taken so far; the next update uses `step + 1` for bias correction.
    step: u64,
    work: Workspace,
    /// The flat ranges the optimizer updates on the other thread: the weight rows of each
    /// split layer's second input half (sorted, disjoint; empty when no layer splits).
    second_halves: Vec<Range<usize>>,
}

/// What a training pass leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The gradients, for the caller to reduce and apply ([`CpuMlp::apply_update`]).
    Gradients,
    /// The gradients, and the optimizer step taken with them: each layer's update fused into
    /// its backward (`cpu/layers/dense.rs`), the bits of the step taken afterwards.
    Step,
}

/// The optimizer's elementwise update with one step's scalars.
fn update_rule(
    optimizer: Optimizer,
    s: StepScalars,
) -> impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync {
    move |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| match optimizer {
        Optimizer::Adam { .. } => adam_here(p, g, m, v, &s),
        Optimizer::Sgd { .. } => sgd_here(p, g, m, &s),
    }
}

impl CpuMlp {
    /// A model from its spec, flat parameters (`spec.layout().len` floats) and optimizer.
    ///
    /// The last layer must be [`Activation::Identity`]: its outputs are the logits of the fused
    /// softmax cross-entropy, or the predictions of the mean squared error. An invalid optimizer (learning rate 0, ...) is [`Error::Config`].
    pub fn new(spec: Network, params: Vec<f32>, optimizer: Optimizer) -> Result<Self> {
        spec.validate()?;
        if spec.activations().last() != Some(&Activation::Identity) {
            return Err(Error::Config(format!(
                "the last layer's activation must be identity (it outputs logits for the \
                 softmax cross-entropy), got {:?}",
                spec.activations().last()
            )));
        }
        optimizer.validate()?;
        let layout = spec.layout();
        check_len("parameters", params.len(), layout.len)?;
        let len = layout.len;
        let second_halves = layout
            .layers
            .iter()
            .filter_map(|slots| {
                dense::input_split(slots)
                    .map(|h| slots.weight + h * slots.outputs..slots.weight + slots.inputs * slots.outputs)
            })
            .collect();
        Ok(CpuMlp {
            spec,
            layout,
            optimizer,
            schedule: LrSchedule::Constant,
            params: Floats::from_slice(&params),
            grads: Floats::zeros(len),
            m: Floats::zeros(len),
            v: Floats::zeros(len),
            step: 0,
            work: Workspace::default(),
            second_halves,
        })
    }

    /// The model's description.
    pub fn spec(&self) -> &Network {
        &self.spec
    }

    /// The flat layout of parameters, gradients and moments.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The update rule.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// From the next update on, the base rate `lr` (finite, >= 0) shaped by `schedule`.
    pub fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()> {
        LrSchedule::check_rate(lr)?;
        schedule.validate()?;
        self.optimizer = self.optimizer.with_lr(lr);
        self.schedule = schedule;
        Ok(())
    }

    /// Flat parameters, `layout().len` floats.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Replaces the parameters; `p` must be `layout().len` floats.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        check_len("parameters", p.len(), self.layout.len)?;
        self.params.copy_from_slice(p);
        Ok(())
    }

    /// `(m, v, step)`: the moments (SGD's momentum is `m`; its `v` is zeros) and steps taken.
    pub fn optimizer_state(&self) -> (&[f32], &[f32], u64) {
        (&self.m, &self.v, self.step)
    }

    /// Restores the state [`CpuMlp::optimizer_state`] returned; both buffers `layout().len`.
    pub fn set_optimizer_state(&mut self, m: &[f32], v: &[f32], step: u64) -> Result<()> {
        check_len("optimizer moment m", m.len(), self.layout.len)?;
        check_len("optimizer moment v", v.len(), self.layout.len)?;
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        self.step = step;
        Ok(())
    }

    /// Gradients of the last [`CpuMlp::compute_gradients`].
    pub fn grads(&self) -> &[f32] {
        &self.grads
    }

    /// Gradients, writable, so that gradients reduced elsewhere (other replicas, other
    /// processes) can replace this model's own before [`CpuMlp::apply_update`].
    pub fn grads_mut(&mut self) -> &mut [f32] {
        &mut self.grads
    }

    /// Forward and backward on `x: [rows, inputs]` and `labels: [rows]`: overwrites the
    /// gradients with those of `loss_sum / scale_rows`, and returns `(loss_sum, correct)`.
    ///
    /// `scale_rows` is `rows` for a plain step; a data-parallel replica passes the global batch
    /// so that summing the replicas' gradients gives the gradient of the global mean loss.
    pub fn compute_gradients(&mut self, x: &[f32], labels: &[u32], scale_rows: usize) -> Result<(f32, u32)> {
        on_pool(|| self.gradients_here(LayerInput::Whole(x), labels, (scale_rows, 0), Pass::Gradients))
    }

    /// [`CpuMlp::compute_gradients`] for the rows of a global batch that start at position
    /// `first_row` in it (a data-parallel shard's share): dropout draws those rows' masks, as
    /// one executor computing the whole batch would.
    // Its caller, the CPU shard of a process group, exists with the `mpi` feature only.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn compute_gradients_from(
        &mut self,
        x: &[f32],
        labels: &[u32],
        scale_rows: usize,
        first_row: usize,
    ) -> Result<(f32, u32)> {
        on_pool(|| {
            self.gradients_here(LayerInput::Whole(x), labels, (scale_rows, first_row), Pass::Gradients)
        })
    }

    /// Where the first layer splits its inputs (see `cpu/layers/dense.rs`): the CPU executor
    /// gathers a batch's two column blocks on the two threads that read them.
    pub(crate) fn input_split(&self) -> Option<usize> {
        match (self.spec.layers.first(), self.layout.layers.first()) {
            (Some(Layer::Dense { .. }), Some(slots)) => dense::input_split(slots),
            _ => None,
        }
    }

    /// Checks that `x` holds `rows` rows of the inputs, whole or in the first layer's halves,
    /// and, for a pass with a `backward`, nonzeros laid out by column too: before anything
    /// is computed, so that a refused batch leaves the model as it was.
    fn check_input(&self, x: LayerInput<'_>, rows: usize, backward: bool) -> Result<()> {
        let inputs = self.spec.inputs();
        match (x, self.input_split()) {
            (LayerInput::Whole(x), _) => check_len("inputs x", x.len(), elements("inputs x", rows, inputs)?),
            (LayerInput::Halves(lo, hi), Some(h)) => {
                check_len("inputs x[:, ..h]", lo.len(), elements("inputs x[:, ..h]", rows, h)?)?;
                check_len("inputs x[:, h..]", hi.len(), elements("inputs x[:, h..]", rows, inputs - h)?)
            }
            (LayerInput::Sparse(lo, hi), Some(h)) => {
                let shape = |x: &SparseInput<'_>| (x.by_row.rows(), x.by_row.cols());
                // By column, each half is its transpose's rows: both halves or neither.
                let transposed = |x: &SparseInput<'_>, t: Csr<'_>| (t.cols(), t.rows()) == shape(x);
                let by_column = match (lo.by_column, hi.by_column) {
                    (None, None) => !backward,
                    (Some(a), Some(b)) => transposed(&lo, a) && transposed(&hi, b),
                    _ => false,
                };
                if shape(&lo) != (rows, h) || shape(&hi) != (rows, inputs - h) || !by_column {
                    return Err(Error::Shape(format!(
                        "inputs as nonzeros: halves of {:?} and {:?}, expected ({rows}, {h}) and \
                         ({rows}, {}), both or neither laid out by column too (both for a \
                         training step)",
                        shape(&lo),
                        shape(&hi),
                        inputs - h
                    )));
                }
                Ok(())
            }
            (LayerInput::Halves(..) | LayerInput::Sparse(..), None) => Err(Error::Shape(
                "inputs given in halves to a model whose first layer does not split them".into(),
            )),
        }
    }

    /// [`CpuMlp::compute_gradients`] on the calling thread, and the update too for
    /// [`Pass::Step`].
    fn gradients_here(
        &mut self,
        x: LayerInput<'_>,
        labels: &[u32],
        (scale_rows, row_base): (usize, usize),
        pass: Pass,
    ) -> Result<(f32, u32)> {
        let scale = 1.0 / scale_rows as f32;
        self.through_loss(x, labels.len(), (scale_rows, row_base), pass, |z, dz, classes| {
            softmax_xent_into(z, labels, classes, scale, dz)
        })
    }

    /// Forward over `rows` rows of `x`, then `loss(z, dz, outputs)` on the last layer's
    /// outputs `z: [rows, outputs]` (it writes their gradient `dz`), then backward: the one
    /// pass every loss shares. `scale_rows` is the global batch the gradient averages over,
    /// `row_base` the position of `x`'s first row in it; dropout draws the masks of optimizer
    /// step `step + 1`, the update these gradients are for. [`Pass::Step`] takes that update
    /// during the backward pass.
    fn through_loss<T>(
        &mut self,
        x: LayerInput<'_>,
        rows: usize,
        (scale_rows, row_base): (usize, usize),
        pass: Pass,
        loss: impl FnOnce(&[f32], &mut [f32], usize) -> Result<T>,
    ) -> Result<T> {
        self.check_input(x, rows, true)?;
        if scale_rows < rows {
            return Err(Error::Shape(format!(
                "scale_rows ({scale_rows}) must be at least the batch's {rows} rows: it is \
                 the global batch size the gradient is averaged over"
            )));
        }
        self.work.reserve(&self.spec, rows)?;
        let at = MaskAt { step: self.step.saturating_add(1), row_base };
        forward(&self.spec, &self.layout, &self.params, &mut self.work, x, rows, Some(at))?;
        let last = self.spec.layers.len() - 1;
        let outputs = self.spec.outputs();
        let n = rows * outputs;
        let out = loss(&self.work.z[last][..n], &mut self.work.dz[last][..n], outputs)?;
        if pass == Pass::Gradients {
            let mut params = Params::Read(&self.params);
            backward(&self.spec, &self.layout, &mut params, &mut self.grads, &mut self.work, x, rows, at)?;
            return Ok(out);
        }
        self.step = self.step.saturating_add(1);
        let rule = update_rule(self.optimizer, self.schedule.step_scalars(&self.optimizer, self.step));
        // The layout's padding is left alone: its values, gradients and moments are zeros,
        // which stay zeros under every rule.
        let state = State { params: &mut self.params, m: &mut self.m, v: &mut self.v };
        let mut params = Params::Update { state, rule: &rule };
        backward(&self.spec, &self.layout, &mut params, &mut self.grads, &mut self.work, x, rows, at)?;
        Ok(out)
    }

    /// Forward only over `rows` rows of `x`, at most [`EVAL_CHUNK`] at a time: `each(i, z,
    /// outputs)` sees chunk `i`'s outputs `z: [chunk rows, outputs]`, in order.
    fn forward_chunks(
        &mut self,
        x: LayerInput<'_>,
        rows: usize,
        mut each: impl FnMut(usize, &[f32], usize) -> Result<()>,
    ) -> Result<()> {
        self.check_input(x, rows, false)?;
        self.work.reserve(&self.spec, rows.min(EVAL_CHUNK))?;
        let (last, outputs) = (self.spec.layers.len() - 1, self.spec.outputs());
        for (i, first) in (0..rows).step_by(EVAL_CHUNK).enumerate() {
            let r = (rows - first).min(EVAL_CHUNK);
            let x = self.rows_of(x, first, r)?;
            forward(&self.spec, &self.layout, &self.params, &mut self.work, x, r, None)?;
            each(i, &self.work.z[last][..r * outputs], outputs)?;
        }
        Ok(())
    }

    /// One optimizer step over the whole flat buffer with the current gradients: `step += 1`,
    /// then Adam or SGD with the scalars of that step (`schedule.step_scalars`).
    ///
    /// The weight rows of each split layer's second input half are updated on the other
    /// thread, which computed their gradients (see `cpu/layers/dense.rs`); the update is
    /// elementwise, so how it is cut changes no bit.
    pub fn apply_update(&mut self) {
        self.step = self.step.saturating_add(1);
        let s = self.schedule.step_scalars(&self.optimizer, self.step);
        if self.second_halves.is_empty() {
            let result = match self.optimizer {
                Optimizer::Adam { .. } => {
                    adam_step(&mut self.params, &self.grads, &mut self.m, &mut self.v, &s)
                }
                Optimizer::Sgd { .. } => sgd_step(&mut self.params, &self.grads, &mut self.m, &s),
            };
            // Cannot fail: `new` and the setters keep all four buffers at `layout.len`.
            debug_assert!(result.is_ok(), "optimizer buffers out of step: {result:?}");
            return;
        }
        let update = update_rule(self.optimizer, s);
        let bufs = (&mut self.params[..], &self.grads[..], &mut self.m[..], &mut self.v[..]);
        update_in_halves(bufs, &self.second_halves, &update);
    }

    /// [`CpuMlp::compute_gradients`] over the batch's own rows, then [`CpuMlp::apply_update`]
    /// (fused into the backward pass, with the same bits).
    pub fn train_step(&mut self, x: &[f32], labels: &[u32]) -> Result<(f32, u32)> {
        on_pool(|| self.train_step_here(LayerInput::Whole(x), labels))
    }

    /// [`CpuMlp::train_step`] on the calling thread, with the inputs whole or in the first
    /// layer's halves (the CPU executor's gather).
    pub(crate) fn train_step_here(&mut self, x: LayerInput<'_>, labels: &[u32]) -> Result<(f32, u32)> {
        self.gradients_here(x, labels, (labels.len(), 0), Pass::Step)
    }

    /// Forward only: `(loss_sum, correct)` over `x: [rows, inputs]`, in chunks of at most 1000
    /// rows whose f32 loss sums are added in order. Gradients are left untouched.
    pub fn evaluate(&mut self, x: &[f32], labels: &[u32]) -> Result<(f32, u32)> {
        on_pool(|| self.evaluate_here(LayerInput::Whole(x), labels))
    }

    /// [`CpuMlp::evaluate`] on the calling thread, with the inputs whole or in the first
    /// layer's halves (the CPU executor's gather).
    pub(crate) fn evaluate_here(&mut self, x: LayerInput<'_>, labels: &[u32]) -> Result<(f32, u32)> {
        let (mut loss_sum, mut correct) = (0.0f32, 0u32);
        self.forward_chunks(x, labels.len(), |i, z, classes| {
            let y = &labels[i * EVAL_CHUNK..(i * EVAL_CHUNK + z.len() / classes)];
            let (l, c) = xent_loss(z, y, classes)?;
            loss_sum += l;
            correct += c;
            Ok(())
        })?;
        Ok((loss_sum, correct))
    }

    /// Rows `first..first + rows` of `x` (checked by `check_input` to hold them).
    fn rows_of<'a>(&self, x: LayerInput<'a>, first: usize, rows: usize) -> Result<LayerInput<'a>> {
        let inputs = self.spec.inputs();
        let h = self.input_split().unwrap_or(inputs);
        Ok(match x {
            LayerInput::Whole(x) => LayerInput::Whole(&x[first * inputs..(first + rows) * inputs]),
            LayerInput::Halves(lo, hi) => LayerInput::Halves(
                &lo[first * h..(first + rows) * h],
                &hi[first * (inputs - h)..(first + rows) * (inputs - h)],
            ),
            // A forward pass reads the nonzeros by row only.
            LayerInput::Sparse(lo, hi) => {
                let slice = |x: SparseInput<'a>| {
                    let by_row = x.by_row.slice_rows(first, rows).ok_or_else(|| {
                        Error::Shape(format!(
                            "rows {first}..{} of {} nonzero rows",
                            first + rows,
                            x.by_row.rows()
                        ))
                    })?;
                    Ok::<_, Error>(SparseInput { by_row, by_column: None })
                };
                LayerInput::Sparse(slice(lo)?, slice(hi)?)
            }
        })
    }

    /// Softmax probabilities `[rows, classes]` for `x: [rows, inputs]`, in chunks of at most
    /// 1000 rows.
    pub fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        on_pool(|| self.predict_here(x, true))
    }

    /// The last layer's outputs `[rows, outputs]` for `x: [rows, inputs]` as they are (a
    /// regression model's predictions, a classifier's logits), in chunks of at most 1000 rows.
    pub fn outputs(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        on_pool(|| self.predict_here(x, false))
    }

    /// [`CpuMlp::predict`] (`softmax`) or [`CpuMlp::outputs`] on the calling thread.
    fn predict_here(&mut self, x: &[f32], softmax_rows: bool) -> Result<Vec<f32>> {
        let (inputs, classes) = (self.spec.inputs(), self.spec.outputs());
        if x.is_empty() || !x.len().is_multiple_of(inputs) {
            return Err(Error::Shape(format!(
                "predict needs x: [rows, {inputs}] with rows > 0, got {} values",
                x.len()
            )));
        }
        let rows = x.len() / inputs;
        self.work.reserve(&self.spec, rows.min(EVAL_CHUNK))?;
        let last = self.spec.layers.len() - 1;
        let mut out = Vec::with_capacity(elements("predictions", rows, classes)?);
        for x in x.chunks(EVAL_CHUNK * inputs) {
            let r = x.len() / inputs;
            forward(&self.spec, &self.layout, &self.params, &mut self.work, LayerInput::Whole(x), r, None)?;
            let z = &self.work.z[last][..r * classes];
            if softmax_rows {
                out.extend(softmax(z, classes)?);
            } else {
                out.extend_from_slice(z);
            }
        }
        Ok(out)
    }
}

/// The four flat buffers of an optimizer update: parameters, gradients and the two moments.
type UpdateBuffers<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// Runs `update` over the whole of `bufs`, each range of `second` on the other thread
/// (rayon::join's second half) and everything between them on this one.
fn update_in_halves(
    bufs: UpdateBuffers<'_>,
    second: &[Range<usize>],
    update: &(impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync),
) {
    let (mut p, mut g, mut m, mut v) = bufs;
    let mut at = 0;
    for range in second {
        let (first, len) = (range.start - at, range.len());
        let (p_first, rest) = std::mem::take(&mut p).split_at_mut(first);
        let (p_second, p_rest) = rest.split_at_mut(len);
        let (g_first, rest) = g.split_at(first);
        let (g_second, g_rest) = rest.split_at(len);
        let (m_first, rest) = std::mem::take(&mut m).split_at_mut(first);
        let (m_second, m_rest) = rest.split_at_mut(len);
        let (v_first, rest) = std::mem::take(&mut v).split_at_mut(first);
        let (v_second, v_rest) = rest.split_at_mut(len);
        rayon::join(
            || update(p_first, g_first, m_first, v_first),
            || update(p_second, g_second, m_second, v_second),
        );
        (p, g, m, v, at) = (p_rest, g_rest, m_rest, v_rest, range.end);
    }
    update(p, g, m, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::bits;
    use crate::spec::{Init, Loss, StepScalars};

    /// The MNIST model (its first layer splits its inputs) and a batch of 37 rows.
    fn model_and_batch() -> (CpuMlp, Vec<f32>, Vec<u32>) {
        let spec = Network::default();
        let params = spec.layout().init(Init::He, 3);
        let model = CpuMlp::new(spec, params, Optimizer::adam(1e-3)).expect("model");
        let x: Vec<f32> = (0..37 * 784).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect();
        let labels = (0..37).map(|r| (r % 10) as u32).collect();
        (model, x, labels)
    }

    /// The executor hands the batch over in the first layer's column halves; that must train
    /// and evaluate exactly as the whole rows do.
    #[test]
    fn inputs_in_halves_train_as_whole_rows() {
        let (mut whole, x, labels) = model_and_batch();
        let (mut halves, _, _) = model_and_batch();
        let h = whole.input_split().expect("the 784-input layer splits its inputs");
        let lo: Vec<f32> = x.chunks(784).flat_map(|r| r[..h].to_vec()).collect();
        let hi: Vec<f32> = x.chunks(784).flat_map(|r| r[h..].to_vec()).collect();
        for _ in 0..3 {
            let a = whole.train_step_here(LayerInput::Whole(&x), &labels).expect("step");
            let b = halves.train_step_here(LayerInput::Halves(&lo, &hi), &labels).expect("step");
            assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1), "loss and correct count");
        }
        assert!(whole.params().iter().zip(halves.params()).all(|(a, b)| a.to_bits() == b.to_bits()));
        let a = whole.evaluate_here(LayerInput::Whole(&x), &labels).expect("evaluate");
        let b = halves.evaluate_here(LayerInput::Halves(&lo, &hi), &labels).expect("evaluate");
        assert_eq!(a.0.to_bits(), b.0.to_bits());
        // Halves of the wrong widths are refused, as is a model that does not split.
        let r = halves.evaluate_here(LayerInput::Halves(&hi, &lo), &labels);
        assert!(matches!(r, Err(Error::Shape(_))), "halves swapped: {r:?}");
    }

    /// A training step, whose update is fused into the backward pass, leaves the bits of the
    /// gradients followed by a separate update: parameters, moments, gradients and step count,
    /// step after step. The models: MNIST's (its first layer splits its inputs); one whose
    /// weight gradients are cut over threads by rows, with a dropout between dense layers (each
    /// layer's input gradient must use the weights of the forward, not the updated ones);
    /// under Adam, AdamW and SGD with momentum, and with a regression loss.
    #[test]
    fn the_fused_step_gives_the_bits_of_gradients_then_update() {
        // 100 x 150 and 150 x 100 weights: too few to split their inputs, enough (at 96
        // rows) for their weight gradients to be cut by rows over two threads.
        let deep = Network::new(100)
            .dense(150, Activation::Relu)
            .dropout(0.2)
            .dense(100, Activation::Tanh)
            .dense(7, Activation::Identity);
        let optimizers = [
            Optimizer::adam(1e-3),
            Optimizer::Adam { lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-7, weight_decay: 0.1 },
            Optimizer::sgd(0.05, 0.9),
        ];
        for (spec, rows) in [(Network::default(), 37), (deep, 96)] {
            let (inputs, outputs) = (spec.inputs(), spec.outputs());
            let x: Vec<f32> = (0..rows * inputs).map(|i| ((i * 7919) % 256) as f32 / 255.0).collect();
            let labels: Vec<u32> = (0..rows).map(|r| (r % outputs) as u32).collect();
            let y: Vec<f32> = (0..rows * outputs).map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5).collect();
            for opt in optimizers {
                let params = spec.layout().init(Init::He, 5);
                let mut fused = CpuMlp::new(spec.clone(), params.clone(), opt).expect("model");
                let mut apart = CpuMlp::new(spec.clone(), params, opt).expect("model");
                let name = format!("{:?} {opt:?}", spec.widths());
                for t in 0..3 {
                    let a = fused.train_step(&x, &labels).expect("fused step");
                    let b = apart.compute_gradients(&x, &labels, rows).expect("gradients");
                    apart.apply_update();
                    assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1), "{name} step {t}: loss");
                    // A regression step too: the same pass under another loss.
                    let mut sums = vec![0.0; task_sums_len(Loss::MeanSquaredError, outputs)];
                    let a = fused.train_step_with(Loss::MeanSquaredError, &x, &y, &mut sums).expect("fused");
                    let b = apart
                        .compute_gradients_with(Loss::MeanSquaredError, &x, &y, rows, &mut sums)
                        .expect("gradients");
                    apart.apply_update();
                    assert_eq!(a.to_bits(), b.to_bits(), "{name} step {t}: regression loss");
                    assert_eq!(bits(fused.params()), bits(apart.params()), "{name} step {t}: params");
                    assert_eq!(bits(fused.grads()), bits(apart.grads()), "{name} step {t}: grads");
                    let ((fm, fv, fs), (am, av, ast)) = (fused.optimizer_state(), apart.optimizer_state());
                    assert_eq!((bits(fm), bits(fv), fs), (bits(am), bits(av), ast), "{name} step {t}: state");
                }
            }
        }
    }

    /// The update cut at the split layer's second half is the update of the whole buffer.
    #[test]
    fn the_update_in_halves_is_the_whole_update() {
        let (mut model, x, labels) = model_and_batch();
        assert_eq!(model.second_halves.len(), 1, "one split layer");
        model.compute_gradients(&x, &labels, labels.len()).expect("gradients");
        let (mut p, g, mut m, mut v) =
            (model.params.clone(), model.grads.clone(), model.m.clone(), model.v.clone());
        model.apply_update();
        let s: StepScalars = model.optimizer.step_scalars(1);
        adam_step(&mut p, &g, &mut m, &mut v, &s).expect("adam");
        assert_eq!(bits(&model.params), bits(&p));
        assert_eq!(bits(&model.m), bits(&m));
        assert_eq!(bits(&model.v), bits(&v));
    }
}
