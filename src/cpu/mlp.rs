//! [`CpuMlp`]: a whole MLP trained on the CPU with the ops of this module: the executor used
//! when no GPU adapter exists, and the model-level oracle of the GPU trainer's tests.
//!
//! Parameters, gradients and optimizer moments are flat buffers in the [`ParamLayout`] the GPU
//! uses, so state moves between the backends by copying slices. Activations live in a
//! [`Workspace`] sized for the largest batch seen so far: after the first step of that size,
//! every step (and every smaller one, such as an epoch's last partial batch) reuses them.

use crate::error::{Error, Result};
use crate::spec::Optimizer;
use crate::spec::{Activation, Network, ParamLayout};

use super::pass::{backward, forward, Workspace};
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
    optimizer: Optimizer,
    /// Flat parameters in `layout` order; padding slots are zero.
    params: Vec<f32>,
    /// Gradients of the last `compute_gradients`, same layout; padding stays zero.
    grads: Vec<f32>,
    /// Adam's first moment, or SGD's momentum buffer.
    m: Vec<f32>,
    /// Adam's second moment (kept at full length, and zero, for SGD so that the state has one
    /// shape whatever the optimizer).
    v: Vec<f32>,
    /// Optimizer steps taken so far; the next update uses `step + 1` for bias correction.
    step: u64,
    work: Workspace,
}

impl CpuMlp {
    /// A model from its spec, flat parameters (`spec.layout().len` floats) and optimizer.
    ///
    /// The last layer must be [`Activation::Identity`]: its outputs are the logits of the fused
    /// softmax cross-entropy. An invalid optimizer (learning rate 0, ...) is [`Error::Config`].
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
        Ok(CpuMlp {
            spec,
            layout,
            optimizer,
            params,
            grads: vec![0.0; len],
            m: vec![0.0; len],
            v: vec![0.0; len],
            step: 0,
            work: Workspace::default(),
        })
    }

    /// Outputs of the last layer, from the layout (`Network::outputs` builds a list of widths:
    /// an allocation per call, which a training step must not make).
    fn classes(&self) -> usize {
        self.layout.layers.last().map_or(0, |l| l.outputs)
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
        on_pool(|| self.gradients_here(x, labels, scale_rows))
    }

    /// [`CpuMlp::compute_gradients`] on the calling thread.
    fn gradients_here(&mut self, x: &[f32], labels: &[u32], scale_rows: usize) -> Result<(f32, u32)> {
        let rows = labels.len();
        check_len("inputs x", x.len(), elements("inputs x", rows, self.spec.inputs())?)?;
        if scale_rows < rows {
            return Err(Error::Shape(format!(
                "scale_rows ({scale_rows}) must be at least the batch's {rows} rows: it is \
                 the global batch size the gradient is averaged over"
            )));
        }
        self.work.reserve(&self.spec, rows)?;
        forward(&self.spec, &self.layout, &self.params, &mut self.work, x, rows)?;
        let last = self.spec.layers.len() - 1;
        let classes = self.classes();
        let n = rows * classes;
        let (loss_sum, correct) = softmax_xent_into(
            &self.work.z[last][..n],
            labels,
            classes,
            1.0 / scale_rows as f32,
            &mut self.work.dz[last][..n],
        )?;
        backward(&self.spec, &self.layout, &self.params, &mut self.grads, &mut self.work, x, rows)?;
        Ok((loss_sum, correct))
    }

    /// One optimizer step over the whole flat buffer with the current gradients: `step += 1`,
    /// then Adam or SGD with `optimizer.step_scalars(step)`.
    pub fn apply_update(&mut self) {
        self.step = self.step.saturating_add(1);
        let s = self.optimizer.step_scalars(self.step);
        let result = match self.optimizer {
            Optimizer::Adam { .. } => adam_step(&mut self.params, &self.grads, &mut self.m, &mut self.v, &s),
            Optimizer::Sgd { .. } => sgd_step(&mut self.params, &self.grads, &mut self.m, &s),
        };
        // Cannot fail: `new` and the setters keep all four buffers at `layout.len`.
        debug_assert!(result.is_ok(), "optimizer buffers out of step: {result:?}");
    }

    /// [`CpuMlp::compute_gradients`] over the batch's own rows, then [`CpuMlp::apply_update`].
    pub fn train_step(&mut self, x: &[f32], labels: &[u32]) -> Result<(f32, u32)> {
        on_pool(|| {
            let out = self.gradients_here(x, labels, labels.len())?;
            self.apply_update();
            Ok(out)
        })
    }

    /// Forward only: `(loss_sum, correct)` over `x: [rows, inputs]`, in chunks of at most 1000
    /// rows whose f32 loss sums are added in order. Gradients are left untouched.
    pub fn evaluate(&mut self, x: &[f32], labels: &[u32]) -> Result<(f32, u32)> {
        on_pool(|| self.evaluate_here(x, labels))
    }

    /// [`CpuMlp::evaluate`] on the calling thread.
    fn evaluate_here(&mut self, x: &[f32], labels: &[u32]) -> Result<(f32, u32)> {
        let (inputs, classes) = (self.spec.inputs(), self.classes());
        check_len("inputs x", x.len(), elements("inputs x", labels.len(), inputs)?)?;
        self.work.reserve(&self.spec, labels.len().min(EVAL_CHUNK))?;
        let last = self.spec.layers.len() - 1;
        let (mut loss_sum, mut correct) = (0.0f32, 0u32);
        for (x, y) in x.chunks(EVAL_CHUNK * inputs).zip(labels.chunks(EVAL_CHUNK)) {
            forward(&self.spec, &self.layout, &self.params, &mut self.work, x, y.len())?;
            let (l, c) = xent_loss(&self.work.z[last][..y.len() * classes], y, classes)?;
            loss_sum += l;
            correct += c;
        }
        Ok((loss_sum, correct))
    }

    /// Softmax probabilities `[rows, classes]` for `x: [rows, inputs]`, in chunks of at most
    /// 1000 rows.
    pub fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        on_pool(|| self.predict_here(x))
    }

    /// [`CpuMlp::predict`] on the calling thread.
    fn predict_here(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let (inputs, classes) = (self.spec.inputs(), self.classes());
        if x.is_empty() || !x.len().is_multiple_of(inputs) {
            return Err(Error::Shape(format!(
                "predict needs x: [rows, {inputs}] with rows > 0, got {} values",
                x.len()
            )));
        }
        let rows = x.len() / inputs;
        self.work.reserve(&self.spec, rows.min(EVAL_CHUNK))?;
        let last = self.spec.layers.len() - 1;
        let mut probs = Vec::with_capacity(elements("predictions", rows, classes)?);
        for x in x.chunks(EVAL_CHUNK * inputs) {
            let r = x.len() / inputs;
            forward(&self.spec, &self.layout, &self.params, &mut self.work, x, r)?;
            probs.extend(softmax(&self.work.z[last][..r * classes], classes)?);
        }
        Ok(probs)
    }
}
