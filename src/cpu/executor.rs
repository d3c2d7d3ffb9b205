//! The CPU reference as an [`Executor`]: the whole model trained by [`CpuMlp`] on the host,
//! batches gathered from the host's data set, with the softmax cross-entropy on class labels
//! or the mean squared error on target values.

use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::exec::{EpochPlan, EpochSums, Executor, ExecutorState, PassSums, StepHook, ValSource};
use crate::spec::{Loss, Network, Optimizer};

use super::{CpuMlp, MSE_SUMS};

/// Rows per forward pass when evaluating.
const EVAL_ROWS: usize = 1000;

/// The CPU executor: [`CpuMlp`] plus reused batch buffers and the best-weights snapshot.
pub(crate) struct CpuExecutor {
    mlp: CpuMlp,
    loss: Loss,
    /// restore_best_weights' snapshot; empty until the first one.
    best: Vec<f32>,
    /// Reused batch buffers: no allocation per step.
    x: Vec<f32>,
    /// Class labels `[rows]` (classification).
    y: Vec<u32>,
    /// Target values `[rows, outputs]` (regression).
    values: Vec<f32>,
    /// One batch's task sums (the mean squared error's `[MSE_SUMS * outputs]`).
    batch_sums: Vec<f32>,
}

impl CpuExecutor {
    pub fn new(spec: &Network, optimizer: Optimizer, loss: Loss, params: &[f32]) -> Result<Self> {
        let task_sums = match loss {
            Loss::SoftmaxCrossEntropy => 0,
            Loss::MeanSquaredError => MSE_SUMS * spec.outputs(),
        };
        Ok(CpuExecutor {
            mlp: CpuMlp::new(spec.clone(), params.to_vec(), optimizer)?,
            loss,
            best: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            values: Vec::new(),
            batch_sums: vec![0.0; task_sums],
        })
    }

    /// One training step on the gathered batch, its sums added to `sums`.
    fn step(&mut self, sums: &mut PassSums) -> Result<()> {
        match self.loss {
            Loss::SoftmaxCrossEntropy => {
                let (l, c) = self.mlp.train_step(&self.x, &self.y)?;
                sums.loss += l as f64;
                sums.correct += c as f64;
            }
            Loss::MeanSquaredError => {
                sums.loss += self.mlp.train_step_mse(&self.x, &self.values, &mut self.batch_sums)? as f64;
                sums.add_task(&self.batch_sums);
            }
        }
        Ok(())
    }

    /// The loss of the gathered rows, forward only, its sums added to `sums`.
    fn eval_batch(&mut self, sums: &mut PassSums) -> Result<()> {
        match self.loss {
            Loss::SoftmaxCrossEntropy => {
                let (l, c) = self.mlp.evaluate(&self.x, &self.y)?;
                sums.loss += l as f64;
                sums.correct += c as f64;
            }
            Loss::MeanSquaredError => {
                sums.loss += self.mlp.evaluate_mse(&self.x, &self.values, &mut self.batch_sums)? as f64;
                sums.add_task(&self.batch_sums);
            }
        }
        Ok(())
    }

    /// Gathers rows `idx` of `data` into the batch buffers as the model sees them: pixels
    /// as `p / 255`, computed as the GPU's table was ([`Dataset::row_into`] uses
    /// `pixel_value`, so the same bits) in a loop the compiler vectorizes (a table lookup per
    /// pixel was a fifth of an epoch's time); f32 values copied.
    fn gather(&mut self, data: &Dataset, idx: &[u32]) {
        let f = data.features();
        self.x.resize(idx.len() * f, 0.0);
        self.y.clear();
        self.values.clear();
        for (r, &i) in idx.iter().enumerate() {
            if let (Some(&next), Some(pixels)) = (idx.get(r + 1), data.pixels()) {
                prefetch_row(&pixels[next as usize * f..(next as usize + 1) * f]);
            }
            data.row_into(i as usize, &mut self.x[r * f..(r + 1) * f]);
            match data.targets() {
                Targets::Classes { labels, .. } => self.y.push(labels[i as usize]),
                Targets::Values { values, outputs } => {
                    self.values.extend_from_slice(&values[i as usize * outputs..(i as usize + 1) * outputs])
                }
            }
        }
    }

    fn eval_rows(&mut self, data: &Dataset, idx: &[u32]) -> Result<PassSums> {
        let mut sums = PassSums { rows: idx.len(), ..PassSums::default() };
        for chunk in idx.chunks(EVAL_ROWS) {
            self.gather(data, chunk);
            self.eval_batch(&mut sums)?;
        }
        Ok(sums)
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
        let mut steps = 0;
        for chunk in plan.order.chunks(plan.batch) {
            self.gather(data, chunk);
            self.step(&mut train)?;
            steps += 1;
            if steps % 16 == 0 {
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
        let (m, v, _) = self.mlp.optimizer_state();
        Ok(ExecutorState {
            params: self.mlp.params().to_vec(),
            m: m.to_vec(),
            v: v.to_vec(),
            best: self.best.clone(),
        })
    }

    fn write_state(&mut self, state: &ExecutorState, step: u64) -> Result<()> {
        self.mlp.set_params(&state.params)?;
        self.mlp.set_optimizer_state(&state.m, &state.v, step)?;
        if !state.best.is_empty() {
            if state.best.len() != state.params.len() {
                return Err(Error::Shape(format!(
                    "best weights: {} floats, the model has {}",
                    state.best.len(),
                    state.params.len()
                )));
            }
            self.best = state.best.clone();
        }
        Ok(())
    }

    fn snapshot_best(&mut self) -> Result<()> {
        self.best.clear();
        self.best.extend_from_slice(self.mlp.params());
        Ok(())
    }

    fn restore_best(&mut self) -> Result<()> {
        if self.best.is_empty() {
            return Err(Error::Config("no best weights were snapshotted".into()));
        }
        self.mlp.set_params(&self.best)
    }
}

/// Asks the CPU to start loading `row` into cache: batch rows are scattered over the data set,
/// and the conversion loop otherwise waits on memory at the start of every row.
#[inline]
fn prefetch_row(row: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(64) {
        // SAFETY: prefetching is a hint with no architectural effect; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}
