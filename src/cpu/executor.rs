//! The CPU reference as an [`Executor`]: the whole model trained by [`CpuMlp`] on the host,
//! batches gathered from the host's data set, with the softmax cross-entropy on class labels
//! or a loss on f32 targets: the regression losses on values, the sigmoid cross-entropy on
//! multi-hot rows or on binary labels (seen as 0.0 and 1.0).

use rayon::prelude::*;

use std::ops::Range;

use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::exec::{EpochPlan, EpochSums, Executor, ExecutorState, PassSums, StepHook, ValSource};
use crate::spec::{Loss, LrSchedule, Network, Optimizer};

use super::aligned::Floats;
use super::gather::{gather_nonzeros, gather_rows};
use super::layers::LayerInput;
use super::simd::Isa;
use super::sparse::Nonzeros;
use super::threads::{on_pool_awake, tasks};
use super::{task_sums_len, CpuMlp};

/// Values each thread must convert before a gather is split, on a rayon thread (a batch of 64
/// MNIST rows or more) and elsewhere (see `threads.rs`).
const MIN_GATHER: usize = 1 << 15;
const MIN_GATHER_OUTSIDE: usize = 1 << 19;
/// Rows per forward pass when evaluating.
const EVAL_ROWS: usize = 1000;
/// After a batch too dense for nonzeros, this many are gathered densely before the nonzeros
/// are tried again: the gather of one batch in 65 is wasted on dense data.
const DENSE_BATCHES: usize = 64;
/// The trainer's step hook is called every this many steps.
const HOOK_STEPS: usize = 16;

/// The CPU executor: [`CpuMlp`] plus reused batch buffers and the best-weights snapshot.
pub(crate) struct CpuExecutor {
    mlp: CpuMlp,
    loss: Loss,
    /// restore_best_weights' snapshot; empty until the first one.
    best: Vec<f32>,
    /// The gathered batch's inputs.
    batch: Batch,
    /// Class labels `[rows]` (classification).
    y: Vec<u32>,
    /// f32 targets `[rows, outputs]` (regression values, multi-hot or binary 0/1).
    values: Vec<f32>,
    /// One batch's task sums (`task_sums_len` floats: the regression losses'
    /// `[MSE_SUMS * outputs]`, the sigmoid cross-entropy's right-output count).
    batch_sums: Vec<f32>,
}

impl CpuExecutor {
    pub fn new(spec: &Network, optimizer: Optimizer, loss: Loss, params: &[f32]) -> Result<Self> {
        let task_sums = task_sums_len(loss, spec.outputs());
        Ok(CpuExecutor {
            mlp: CpuMlp::new(spec.clone(), params.to_vec(), optimizer)?,
            loss,
            best: Vec::new(),
            batch: Batch::default(),
            y: Vec::new(),
            values: Vec::new(),
            batch_sums: vec![0.0; task_sums],
        })
    }

    /// One training step on the gathered batch (on the calling thread), its sums added to
    /// `sums`.
    fn step_here(&mut self, sums: &mut PassSums) -> Result<()> {
        let split = self.mlp.input_split().is_some();
        match self.loss {
            Loss::SoftmaxCrossEntropy => {
                let (l, c) = self.mlp.train_step_here(self.batch.input(split), &self.y)?;
                sums.loss += l as f64;
                sums.correct += c as f64;
            }
            loss => {
                sums.loss += self.mlp.train_step_with_here(
                    loss,
                    self.batch.input(split),
                    &self.values,
                    &mut self.batch_sums,
                )? as f64;
                add_task_sums(loss, self.mlp.spec().outputs(), &self.batch_sums, sums);
            }
        }
        Ok(())
    }

    /// The loss of the gathered rows, forward only (on the calling thread), its sums added to
    /// `sums`.
    fn eval_here(&mut self, sums: &mut PassSums) -> Result<()> {
        let split = self.mlp.input_split().is_some();
        match self.loss {
            Loss::SoftmaxCrossEntropy => {
                let (l, c) = self.mlp.evaluate_here(self.batch.input(split), &self.y)?;
                sums.loss += l as f64;
                sums.correct += c as f64;
            }
            loss => {
                sums.loss += self.mlp.evaluate_with_here(
                    loss,
                    self.batch.input(split),
                    &self.values,
                    &mut self.batch_sums,
                )? as f64;
                add_task_sums(loss, self.mlp.spec().outputs(), &self.batch_sums, sums);
            }
        }
        Ok(())
    }

    /// Gathers rows `idx` of `data` into the batch buffers as the model reads them
    /// (`cpu/gather.rs`); `train` says that a training step will read them. When the first
    /// layer splits its inputs at `h` (`cpu/layers/dense.rs`), each half is gathered on the
    /// thread that will multiply it (rayon::join's first half here, the second on the other
    /// thread), so that it is already in that core's cache: as its nonzeros (`nz`, `nz_hi`;
    /// by column too for a training step) when both halves are mostly zeros
    /// (`cpu/sparse.rs`), else written out densely, columns `..h` to `x` and `h..` to `x_hi`.
    /// Otherwise large batches are cut in row blocks. `next` are the rows of the next step,
    /// asked of memory ahead.
    fn gather(&mut self, data: &Dataset, idx: &[u32], next: &[u32], train: bool) -> Result<()> {
        let f = data.features();
        gather_targets(self.loss, data, idx, &mut self.y, &mut self.values);
        self.batch.sparse = false;
        if let Some(h) = self.mlp.input_split() {
            self.batch.x.resize(idx.len() * h);
            self.batch.x_hi.resize(idx.len() * (f - h));
            // No sparse product without the vector kernels (`Nonzeros::sparse_enough`); after a
            // batch too dense for it, the next ones are gathered densely at once for a while
            // (a data set's density changes little from batch to batch), then tried again.
            if Isa::detect() == Isa::Portable || self.batch.dense_for > 0 {
                self.batch.dense_for = self.batch.dense_for.saturating_sub(1);
                let (lo, hi) = (&mut self.batch.x, &mut self.batch.x_hi);
                rayon::join(
                    || gather_rows(data, idx, next, 0..h, lo),
                    || gather_rows(data, idx, next, h..f, hi),
                );
                return Ok(());
            }
            let half = |cols: Range<usize>, nz: &mut Nonzeros| -> Result<()> {
                gather_nonzeros(data, idx, next, cols, nz)?;
                if train && nz.sparse_enough() {
                    nz.lay_out_by_column();
                }
                Ok(())
            };
            let (lo, hi) = (&mut self.batch.nz, &mut self.batch.nz_hi);
            let (a, b) = rayon::join(|| half(0..h, lo), || half(h..f, hi));
            a?;
            b?;
            self.batch.sparse = lo.sparse_enough() && hi.sparse_enough();
            if !self.batch.sparse {
                self.batch.dense_for = DENSE_BATCHES;
                // Dense data: the halves as rows, from their entries (the bits of the inputs).
                let (x, x_hi) = (&mut self.batch.x, &mut self.batch.x_hi);
                rayon::join(|| lo.scatter_into(x), || hi.scatter_into(x_hi));
            }
            return Ok(());
        }
        self.batch.x.resize(idx.len() * f);
        let rows_per = idx.len().div_ceil(tasks(idx.len() * f, MIN_GATHER, MIN_GATHER_OUTSIDE));
        if rows_per >= idx.len() {
            gather_rows(data, idx, next, 0..f, &mut self.batch.x);
        } else {
            self.batch.x.par_chunks_mut(rows_per * f).zip(idx.par_chunks(rows_per)).enumerate().for_each(
                |(part, (x, idx))| {
                    let first = (part * rows_per).min(next.len());
                    let next = &next[first..(first + rows_per).min(next.len())];
                    gather_rows(data, idx, next, 0..f, x)
                },
            );
        }
        Ok(())
    }

    fn eval_rows(&mut self, data: &Dataset, idx: &[u32]) -> Result<PassSums> {
        on_pool_awake(|| {
            let mut sums = PassSums { rows: idx.len(), ..PassSums::default() };
            for chunk in idx.chunks(EVAL_ROWS) {
                self.gather(data, chunk, &[], false)?;
                self.eval_here(&mut sums)?;
            }
            Ok(sums)
        })
    }
}

/// A gathered batch's inputs, in buffers reused from step to step (no allocation per step).
#[derive(Default)]
struct Batch {
    /// The batch's rows, or their columns `..h` when the first layer splits its inputs at
    /// `h`, and `x_hi` then the rest; each starts on a cache line (`aligned.rs`).
    x: Floats,
    x_hi: Floats,
    /// The first layer's halves as nonzeros, and whether the batch is in them (mostly-zero
    /// data) rather than in `x` and `x_hi`.
    nz: Nonzeros,
    nz_hi: Nonzeros,
    sparse: bool,
    /// Batches still to gather densely at once, after one found too dense for nonzeros.
    dense_for: usize,
}

impl Batch {
    /// The batch as the model takes it: whole, in the first layer's halves (`split`), or as
    /// those halves' nonzeros.
    fn input(&self, split: bool) -> LayerInput<'_> {
        match (self.sparse, split) {
            (true, _) => LayerInput::Sparse(self.nz.input(), self.nz_hi.input()),
            (false, true) => LayerInput::Halves(&self.x, &self.x_hi),
            (false, false) => LayerInput::Whole(&self.x),
        }
    }
}

/// The targets of rows `idx` of `data` as `loss` reads them: class labels into `labels` (the
/// softmax cross-entropy), or f32 targets `[rows, outputs]` into `values` (regression values,
/// multi-hot rows, or binary labels as 0.0 and 1.0 for the sigmoid cross-entropy, which the
/// trainer checked). Both are cleared first.
pub(crate) fn gather_targets(
    loss: Loss,
    data: &Dataset,
    idx: &[u32],
    labels: &mut Vec<u32>,
    values: &mut Vec<f32>,
) {
    labels.clear();
    values.clear();
    match data.targets() {
        Targets::Classes { labels: l, .. } if loss == Loss::SigmoidCrossEntropy => {
            values.extend(idx.iter().map(|&i| l[i as usize] as f32))
        }
        Targets::Classes { labels: l, .. } => labels.extend(idx.iter().map(|&i| l[i as usize])),
        Targets::Values { values: v, outputs } | Targets::MultiHot { values: v, classes: outputs } => {
            for &i in idx {
                values.extend_from_slice(&v[i as usize * outputs..(i as usize + 1) * outputs]);
            }
        }
    }
}

impl Executor for CpuExecutor {
    fn devices(&self) -> Vec<String> {
        vec!["cpu".into()]
    }

    /// The rows stay in the caller's data set: nothing to upload.
    fn prepare(&mut self, _data: &Dataset, _train_idx: &[u32], _val: &ValSource<'_>) -> Result<()> {
        Ok(())
    }

    fn run_epoch(
        &mut self,
        data: &Dataset,
        val: &ValSource<'_>,
        plan: &EpochPlan<'_>,
        hook: StepHook<'_>,
    ) -> Result<EpochSums> {
        let mut train = PassSums { rows: plan.order.len(), ..PassSums::default() };
        let (order, batch) = (plan.order, plan.batch.max(1));
        let total = order.len().div_ceil(batch);
        // The rows of step `s`, or none past the last.
        let rows_of = |s: usize| order.get(s * batch..((s + 1) * batch).min(order.len())).unwrap_or(&[]);
        let mut steps = 0;
        // HOOK_STEPS steps at a time on the pool, kept awake (see `on_pool_awake`), the hook
        // (which may not leave this thread) between them.
        while steps < total {
            let end = (steps + HOOK_STEPS).min(total);
            let sums = on_pool_awake(|| -> Result<PassSums> {
                let mut sums = PassSums::default();
                for s in steps..end {
                    self.gather(data, rows_of(s), rows_of(s + 1), true)?;
                    self.step_here(&mut sums)?;
                }
                Ok(sums)
            })?;
            train.loss += sums.loss;
            train.correct += sums.correct;
            if train.task.len() < sums.task.len() {
                train.task.resize(sums.task.len(), 0.0);
            }
            train.task.iter_mut().zip(&sums.task).for_each(|(t, s)| *t += s);
            let done = end - steps;
            steps = end;
            if done == HOOK_STEPS {
                hook(steps)?;
            }
        }
        let val = match val {
            ValSource::None => None,
            ValSource::Split(idx) => Some(self.eval_rows(data, idx)?),
            ValSource::Data(v) => Some(self.evaluate(v, EVAL_ROWS)?),
        };
        Ok(EpochSums { train, val, steps })
    }

    fn evaluate(&mut self, data: &Dataset, _eval_batch: usize) -> Result<PassSums> {
        let all: Vec<u32> = (0..data.len() as u32).collect();
        self.eval_rows(data, &all)
    }

    /// `t` is implied: [`CpuMlp`] counts its own steps, kept equal to the trainer's by
    /// [`Executor::write_state`].
    fn train_step(&mut self, x: &[f32], labels: &[u32], _t: u64) -> Result<PassSums> {
        let (loss, correct) = self.mlp.train_step(x, labels)?;
        Ok(PassSums { loss: loss as f64, correct: correct as f64, rows: labels.len(), task: Vec::new() })
    }

    fn parameters(&self) -> Result<Vec<f32>> {
        Ok(self.mlp.params().to_vec())
    }

    fn read_state(&self) -> Result<ExecutorState> {
        Ok(read_state(&self.mlp, &self.best))
    }

    fn write_state(&mut self, state: &ExecutorState, step: u64) -> Result<()> {
        write_state(&mut self.mlp, &mut self.best, state, step)
    }

    fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()> {
        self.mlp.set_learning_rate(lr, schedule)
    }

    fn snapshot_best(&mut self) -> Result<()> {
        snapshot_best(&self.mlp, &mut self.best);
        Ok(())
    }

    fn restore_best(&mut self) -> Result<()> {
        restore_best(&mut self.mlp, &self.best)
    }
}

/// Parameters, moments and the best-weights snapshot of a CPU model (shared with the CPU
/// replica of a process group).
pub(crate) fn read_state(mlp: &CpuMlp, best: &[f32]) -> ExecutorState {
    let (m, v, _) = mlp.optimizer_state();
    ExecutorState { params: mlp.params().to_vec(), m: m.to_vec(), v: v.to_vec(), best: best.to_vec() }
}

/// Writes what [`read_state`] returned, `step` optimizer steps taken; an empty `best` leaves
/// the snapshot as it is.
pub(crate) fn write_state(
    mlp: &mut CpuMlp,
    best: &mut Vec<f32>,
    state: &ExecutorState,
    step: u64,
) -> Result<()> {
    mlp.set_params(&state.params)?;
    mlp.set_optimizer_state(&state.m, &state.v, step)?;
    if !state.best.is_empty() {
        if state.best.len() != state.params.len() {
            return Err(Error::Shape(format!(
                "best weights: {} floats, the model has {}",
                state.best.len(),
                state.params.len()
            )));
        }
        best.clone_from(&state.best);
    }
    Ok(())
}

/// Copies the current parameters into `best`.
pub(crate) fn snapshot_best(mlp: &CpuMlp, best: &mut Vec<f32>) {
    best.clear();
    best.extend_from_slice(mlp.params());
}

/// Copies `best` back into the parameters; an error when no snapshot was taken.
pub(crate) fn restore_best(mlp: &mut CpuMlp, best: &[f32]) -> Result<()> {
    if best.is_empty() {
        return Err(Error::Config("no best weights were snapshotted".into()));
    }
    mlp.set_params(best)
}

/// Adds a batch's task sums to the pass's: the sigmoid cross-entropy's right outputs as a
/// fraction of a row each (so that `correct / rows` is the binary accuracy over rows and
/// outputs), the regression losses' per-output sums as they are.
pub(crate) fn add_task_sums(loss: Loss, outputs: usize, batch: &[f32], sums: &mut PassSums) {
    match loss {
        Loss::SigmoidCrossEntropy => sums.correct += batch[0] as f64 / outputs as f64,
        _ => sums.add_task(batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::bits;
    use crate::cpu::threads::on_pool;
    use crate::spec::{pixel_value, Init};

    /// Pixels and the same values as f32 gather to the same bits, whole or in the first
    /// layer's halves, and the halves are the rows' columns.
    #[test]
    fn pixels_and_values_gather_alike_whole_and_in_halves() {
        let (rows, f) = (9, 784);
        let px: Vec<u8> = (0..rows * f).map(|i| (i * 31 % 256) as u8).collect();
        let labels: Vec<u8> = (0..rows).map(|r| (r % 10) as u8).collect();
        let images = Dataset::new(px.clone(), labels.clone(), f, 10).expect("pixels");
        let values = px.iter().map(|&p| pixel_value(p)).collect();
        let targets =
            Targets::Classes { labels: labels.iter().map(|&l| u32::from(l)).collect(), classes: 10 };
        let table = Dataset::from_values(values, f, targets).expect("values");
        let idx = [4u32, 0, 8, 4, 2];
        for (name, spec) in [
            ("split", Network::default()),
            ("whole", Network::classifier(&[784, 8, 10], crate::spec::Activation::Relu)),
        ] {
            let params = spec.layout().init(Init::He, 1);
            let gather = |data: &Dataset| {
                let mut e =
                    CpuExecutor::new(&spec, Optimizer::adam(1e-3), Loss::SoftmaxCrossEntropy, &params)
                        .expect("executor");
                e.gather(data, &idx, &[1, 2], true).expect("gather");
                // Few zeros: written out densely from the nonzeros, then, for the next batch,
                // gathered densely at once; both the same bits.
                assert!(!e.batch.sparse, "{name}: dense data gathered as nonzeros");
                let first = (e.batch.x.to_vec(), e.batch.x_hi.to_vec());
                e.gather(data, &idx, &[1, 2], true).expect("gather");
                assert_eq!((bits(&first.0), bits(&first.1)), (bits(&e.batch.x), bits(&e.batch.x_hi)));
                let split = e.mlp.input_split();
                (e.batch.x, e.batch.x_hi, e.y, split)
            };
            let (a, b) = (gather(&images), gather(&table));
            assert_eq!((bits(&a.0), bits(&a.1), &a.2), (bits(&b.0), bits(&b.1), &b.2), "{name}");
            let h = a.3.unwrap_or(f);
            assert_eq!(name == "split", a.3.is_some(), "{name}: split");
            for (r, &i) in idx.iter().enumerate() {
                let want: Vec<u32> = px[i as usize * f..(i as usize + 1) * f]
                    .iter()
                    .map(|&p| pixel_value(p).to_bits())
                    .collect();
                assert_eq!(bits(&a.0[r * h..(r + 1) * h]), want[..h], "{name}: row {r}, columns ..{h}");
                let w = f - h;
                assert_eq!(bits(&a.1[r * w..(r + 1) * w]), want[h..], "{name}: row {r}, columns {h}..");
            }
        }
    }

    /// On mostly-zero pixels the executor gathers the first layer's halves as nonzeros, and
    /// its training steps (a short last batch too) and evaluation give the bits of the same
    /// model trained and evaluated on whole dense rows.
    #[test]
    fn nonzero_batches_train_and_evaluate_as_dense_rows() {
        let (rows, f) = (300, 784);
        // A blob of ink per row on a 28 x 28 background, about 85 % zeros.
        let px: Vec<u8> = (0..rows * f)
            .map(|i| {
                let (r, y, x) = ((i / f) as i32, (i % f / 28) as i32, (i % 28) as i32);
                let ink = (y - 10 - r % 7).abs() < 6 && (x - 14 + r % 5).abs() < 4;
                if ink {
                    (i * 53 % 255 + 1) as u8
                } else {
                    0
                }
            })
            .collect();
        let labels: Vec<u8> = (0..rows).map(|r| (r * 7 % 10) as u8).collect();
        let images = Dataset::new(px, labels.clone(), f, 10).expect("pixels");
        let spec = Network::default();
        let params = spec.layout().init(Init::He, 3);
        let adam = Optimizer::adam(1e-2);
        let mut e = CpuExecutor::new(&spec, adam, Loss::SoftmaxCrossEntropy, &params).expect("executor");
        let mut dense = CpuMlp::new(spec.clone(), params, adam).expect("model");
        let order: Vec<u32> = (0..rows as u32).map(|i| i * 37 % rows as u32).collect();
        let dense_rows = |idx: &[u32]| {
            let mut x = vec![0.0f32; idx.len() * f];
            for (&i, x) in idx.iter().zip(x.chunks_exact_mut(f)) {
                images.row_into(i as usize, x);
            }
            x
        };
        for (step, idx) in order.chunks(128).enumerate() {
            e.gather(&images, idx, &[], true).expect("gather");
            if Isa::detect() != Isa::Portable {
                assert!(e.batch.sparse, "step {step}: mostly-zero pixels gathered densely");
            }
            let mut sums = PassSums::default();
            // On the backend's pool, as the executor steps (its threads flush subnormals).
            on_pool(|| e.step_here(&mut sums)).expect("step");
            let y: Vec<u32> = idx.iter().map(|&i| u32::from(labels[i as usize])).collect();
            let (loss, correct) = dense.train_step(&dense_rows(idx), &y).expect("dense step");
            assert_eq!((sums.loss, sums.correct), (loss as f64, correct as f64), "step {step}: sums");
            assert!(bits(e.mlp.params()) == bits(dense.params()), "step {step}: parameters differ");
        }
        let all: Vec<u32> = (0..rows as u32).collect();
        let got = e.eval_rows(&images, &all).expect("evaluate");
        // Evaluation's gather lays nothing out by column: a training step refuses it before
        // changing anything.
        if e.batch.sparse {
            let before = e.mlp.params().to_vec();
            let y: Vec<u32> = all.iter().map(|&i| u32::from(labels[i as usize])).collect();
            assert!(e.mlp.train_step_here(e.batch.input(true), &y).is_err(), "no layout by column");
            assert!(bits(e.mlp.params()) == bits(&before), "a refused step changed parameters");
        }
        let y: Vec<u32> = labels.iter().map(|&l| u32::from(l)).collect();
        let (loss, correct) = dense.evaluate(&dense_rows(&all), &y).expect("dense evaluate");
        assert_eq!((got.loss, got.correct), (loss as f64, correct as f64), "evaluation");
    }
}
