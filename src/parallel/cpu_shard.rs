//! The CPU reference as one replica of a process group: each process trains a [`CpuMlp`] on
//! its slice of every global batch, the gradients (scaled by the global batch) are reduced
//! across the processes, and every process applies the same update. The data-parallel twin
//! of the CPU executor, for machines (or CI) without a GPU.

use std::time::Instant;

use super::group::Shard;
use crate::cpu::{self, CpuMlp};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::{
    EpochPlan, EpochSums, Executor, ExecutorState, GradientReducer, ParallelStats, PassSums, StepHook,
    ValSource,
};
use crate::spec::{Loss, LrSchedule, Network, Optimizer};

/// Rows per forward pass when evaluating.
const EVAL_ROWS: usize = 1000;

/// One CPU replica in a process group.
pub(crate) struct CpuShard {
    mlp: CpuMlp,
    loss: Loss,
    /// restore_best_weights' snapshot; empty until the first one.
    best: Vec<f32>,
    /// Reused batch buffers: the rows, their class labels (softmax cross-entropy) or f32
    /// targets (every other loss), and one batch's task sums.
    x: Vec<f32>,
    y: Vec<u32>,
    values: Vec<f32>,
    batch_sums: Vec<f32>,
    /// The reduced gradients (moved into the model's gradient buffer before each update).
    reduced: Vec<f32>,
    shard: Shard,
    reducer: Box<dyn GradientReducer>,
    stats: ParallelStats,
}

impl CpuShard {
    /// One replica from `params`, alone until [`CpuShard::join`].
    pub fn new(spec: &Network, optimizer: Optimizer, loss: Loss, params: &[f32]) -> Result<Self> {
        let mlp = CpuMlp::new(spec.clone(), params.to_vec(), optimizer)?;
        let shard = Shard::solo(vec![1.0]);
        Ok(CpuShard {
            reduced: vec![0.0; params.len()],
            mlp,
            loss,
            best: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            values: Vec::new(),
            batch_sums: vec![0.0; cpu::task_sums_len(loss, spec.outputs())],
            reducer: shard.reducer(),
            shard,
            stats: ParallelStats { rows_per_replica: vec![0], ..ParallelStats::default() },
        })
    }

    /// Makes this replica `shard`'s (joined with one weight) slice of the group's replicas.
    pub fn join(&mut self, shard: Shard) {
        self.reducer = shard.reducer();
        self.shard = shard;
    }

    /// Gathers rows `idx` of `data` into the batch buffers as the model sees them (pixel /
    /// 255 with the GPU's bits, or f32 values as they are) and their targets as the loss
    /// reads them.
    fn gather(&mut self, data: &Dataset, idx: &[u32]) {
        let f = data.features();
        self.x.resize(idx.len() * f, 0.0);
        for (r, &i) in idx.iter().enumerate() {
            data.row_into(i as usize, &mut self.x[r * f..(r + 1) * f]);
        }
        cpu::gather_targets(self.loss, data, idx, &mut self.y, &mut self.values);
    }

    /// One global step: this replica's slice of `batch` (rows of `data`), the reduction
    /// across the group, the update. Returns the slice's sums (rows left at 0).
    fn step(&mut self, data: &Dataset, batch: &[u32]) -> Result<PassSums> {
        let start = Instant::now();
        let (first, rows) = self.shard.local_shares(batch.len())?[0];
        let mut sums = PassSums::default();
        if rows > 0 {
            self.gather(data, &batch[first..first + rows]);
            // Scaled by the global batch: the replicas' gradients sum to the mean's. Dropout
            // draws the masks of rows `first..` of the global batch, as one process would.
            if self.loss == Loss::SoftmaxCrossEntropy {
                let (loss, correct) =
                    self.mlp.compute_gradients_from(&self.x, &self.y, batch.len(), first)?;
                (sums.loss, sums.correct) = (loss as f64, correct as f64);
            } else {
                let xy = (self.x.as_slice(), self.values.as_slice());
                let loss = self.mlp.compute_gradients_with_from(
                    self.loss,
                    xy,
                    batch.len(),
                    first,
                    &mut self.batch_sums,
                )?;
                sums.loss = loss as f64;
                cpu::add_task_sums(self.loss, self.mlp.spec().outputs(), &self.batch_sums, &mut sums);
            }
        } else {
            // Nothing to learn from: this replica adds zeros to the sum.
            self.mlp.grads_mut().fill(0.0);
        }
        let computed = Instant::now();
        let exchanged = self.shard.exchange_secs();
        self.reducer.reduce(&[self.mlp.grads()], &mut self.reduced)?;
        let reduced = Instant::now();
        let exchange = self.shard.exchange_secs() - exchanged;
        self.mlp.grads_mut().copy_from_slice(&self.reduced);
        self.mlp.apply_update();
        self.stats.steps += 1;
        self.stats.rows_per_replica[0] += rows;
        self.stats.compute_and_download_secs += (computed - start).as_secs_f64();
        self.stats.reduce_secs += (reduced - computed).as_secs_f64() - exchange;
        self.stats.exchange_secs += exchange;
        self.stats.upload_secs += reduced.elapsed().as_secs_f64();
        Ok(sums)
    }

    fn eval_rows(&mut self, data: &Dataset, idx: &[u32]) -> Result<PassSums> {
        let mut sums = PassSums { rows: idx.len(), ..PassSums::default() };
        for chunk in idx.chunks(EVAL_ROWS) {
            self.gather(data, chunk);
            if self.loss == Loss::SoftmaxCrossEntropy {
                let (l, c) = self.mlp.evaluate(&self.x, &self.y)?;
                sums.loss += l as f64;
                sums.correct += c as f64;
            } else {
                sums.loss +=
                    self.mlp.evaluate_with(self.loss, &self.x, &self.values, &mut self.batch_sums)? as f64;
                cpu::add_task_sums(self.loss, self.mlp.spec().outputs(), &self.batch_sums, &mut sums);
            }
        }
        Ok(sums)
    }
}

impl Executor for CpuShard {
    fn devices(&self) -> Vec<String> {
        vec!["cpu".into()]
    }

    fn parallel_stats(&self) -> Option<ParallelStats> {
        Some(self.stats.clone())
    }

    fn is_primary(&self) -> bool {
        self.shard.rank() == 0
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
        self.shard.check_agreement(plan.first_step, self.mlp.params())?;
        let mut sums = [PassSums::default(), PassSums::default()];
        let mut steps = 0;
        for batch in plan.order.chunks(plan.batch) {
            sums[0].add(&self.step(data, batch)?);
            steps += 1;
            if steps % 16 == 0 {
                hook(steps)?;
            }
        }
        let mut all = Vec::new();
        if let Some((vdata, idx)) = val.rows(data, &mut all) {
            let (start, rows) = self.shard.local_even_shares(idx.len())?[0];
            sums[1] = self.eval_rows(vdata, &idx[start..start + rows])?;
        }
        self.shard.combine(&mut sums)?;
        let [train, val_sums] = sums;
        let val = match val {
            ValSource::None => None,
            _ => Some(val_sums),
        };
        Ok(EpochSums { train: PassSums { rows: plan.order.len(), ..train }, val, steps })
    }

    /// Every process evaluates all of `data` itself (they hold the same weights).
    fn evaluate(&mut self, data: &Dataset, _eval_batch: usize) -> Result<PassSums> {
        let all: Vec<u32> = (0..data.len() as u32).collect();
        self.eval_rows(data, &all)
    }

    fn train_step(&mut self, _x: &[f32], _labels: &[u32], _t: u64) -> Result<PassSums> {
        Err(Error::Config("train_step runs in one process; use fit to train across processes".into()))
    }

    fn parameters(&self) -> Result<Vec<f32>> {
        Ok(self.mlp.params().to_vec())
    }

    fn read_state(&self) -> Result<ExecutorState> {
        Ok(cpu::read_state(&self.mlp, &self.best))
    }

    fn write_state(&mut self, state: &ExecutorState, step: u64) -> Result<()> {
        cpu::write_state(&mut self.mlp, &mut self.best, state, step)
    }

    fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()> {
        self.mlp.set_learning_rate(lr, schedule)
    }

    fn snapshot_best(&mut self) -> Result<()> {
        cpu::snapshot_best(&self.mlp, &mut self.best);
        Ok(())
    }

    fn restore_best(&mut self) -> Result<()> {
        cpu::restore_best(&mut self.mlp, &self.best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuExecutor;
    use crate::data::Targets;
    use crate::spec::{Activation, Init};

    /// A shard alone is the CPU executor: for every loss, the same epoch gives the same sums
    /// (loss, right outputs or rows, the regression sums) and the same weights, bit for bit
    /// (one process adds the same terms in the same order).
    #[test]
    fn a_shard_alone_sums_every_loss_as_the_cpu_executor() {
        let rows = 64;
        let x: Vec<f32> = (0..rows * 3).map(|i| ((i * 37 % 17) as f32) / 17.0 - 0.5).collect();
        let labels = |k: u32| (0..rows as u32).map(|r| r % k).collect::<Vec<u32>>();
        let multi: Vec<f32> = (0..rows * 2).map(|i| ((i * 7 % 5) % 2) as f32).collect();
        let values: Vec<f32> = (0..rows * 2).map(|i| x[i / 2 * 3 + i % 2] * 2.0 - 0.25).collect();
        let cases = [
            (Loss::SoftmaxCrossEntropy, Targets::Classes { labels: labels(3), classes: 3 }, 3),
            (Loss::SigmoidCrossEntropy, Targets::Classes { labels: labels(2), classes: 2 }, 1),
            (Loss::SigmoidCrossEntropy, Targets::MultiHot { values: multi, classes: 2 }, 2),
            (Loss::MeanSquaredError, Targets::Values { values: values.clone(), outputs: 2 }, 2),
            (Loss::MeanAbsoluteError, Targets::Values { values: values.clone(), outputs: 2 }, 2),
            (Loss::huber(), Targets::Values { values, outputs: 2 }, 2),
        ];
        for (loss, targets, outputs) in cases {
            let data = Dataset::from_values(x.clone(), 3, targets).unwrap();
            let spec = Network::new(3).dense(8, Activation::Relu).dense(outputs, Activation::Identity);
            let params = spec.layout().init(Init::He, 1);
            let order: Vec<u32> = (0..rows as u32).collect();
            let plan = EpochPlan { order: &order, batch: 16, first_step: 0, eval_batch: 16 };
            let mut shard = CpuShard::new(&spec, Optimizer::adam(1e-3), loss, &params).unwrap();
            let mut exec = CpuExecutor::new(&spec, Optimizer::adam(1e-3), loss, &params).unwrap();
            let val = ValSource::Split(&order);
            let a = shard.run_epoch(&data, &val, &plan, &mut |_| Ok(())).unwrap();
            let b = exec.run_epoch(&data, &val, &plan, &mut |_| Ok(())).unwrap();
            assert_eq!((&a.train, &a.val), (&b.train, &b.val), "{loss:?} x{outputs}: the epoch's sums");
            assert!(a.train.correct > 0.0 || loss.is_regression(), "{loss:?}: some outputs right");
            assert_eq!(shard.parameters().unwrap(), exec.parameters().unwrap(), "{loss:?}: the weights");
        }
    }
}
