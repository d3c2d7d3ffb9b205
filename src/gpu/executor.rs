//! The model on one wgpu device as an [`Executor`]: a [`Replica`] with the training (and
//! validation) rows resident, or streamed in chunks when they are too large to be, whole
//! epochs submitted without waiting, and the epoch's sums read back once at its end.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::{EpochPlan, EpochSums, Executor, ExecutorState, PassSums, StepHook, ValSource};
use crate::spec::{Loss, LrSchedule, Network, Optimizer};

use super::replica::{Replica, Rows};
use super::Gpu;

/// One replica on one device.
pub(crate) struct DeviceExecutor {
    replica: Replica,
    train: Option<Rows>,
    val: Option<Rows>,
}

impl DeviceExecutor {
    pub fn new(
        gpu: Gpu,
        spec: &Network,
        optimizer: Optimizer,
        loss: Loss,
        params: &[f32],
        max_rows: usize,
    ) -> Result<Self> {
        let mut replica = Replica::new(gpu, spec, optimizer, params, max_rows)?;
        replica.set_loss(loss)?;
        Ok(DeviceExecutor { replica, train: None, val: None })
    }

    /// The replica, for tests that force streaming.
    #[cfg(test)]
    pub(crate) fn replica_mut(&mut self) -> &mut Replica {
        &mut self.replica
    }
}

impl Executor for DeviceExecutor {
    fn devices(&self) -> Vec<String> {
        vec![self.replica.gpu.report.label()]
    }

    fn dispatches_per_step(&self) -> usize {
        self.replica.dispatches_per_step()
    }

    /// Uploads the training rows `train_idx` of `data` and the validation rows, once per fit
    /// (or prepares their streams).
    fn prepare(&mut self, data: &Dataset, train_idx: &[u32], val: &ValSource<'_>) -> Result<()> {
        let mut all = Vec::new();
        let (train, val) = self.replica.load_rows(data, train_idx, val.rows(data, &mut all))?;
        self.train = Some(train);
        self.val = val;
        Ok(())
    }

    fn run_epoch(
        &mut self,
        data: &Dataset,
        val: &ValSource<'_>,
        plan: &EpochPlan<'_>,
        hook: StepHook<'_>,
    ) -> Result<EpochSums> {
        let train = self.train.ok_or_else(|| Error::Config("fit has not uploaded its data".into()))?;
        let r = &mut self.replica;
        r.clear_metrics();
        let steps = r.submit_train_rows(train, data, plan.order, plan.batch, plan.first_step, hook)?;
        let mut all = Vec::new();
        let val_rows = match (self.val, val.rows(data, &mut all)) {
            (Some(rows), Some((vdata, idx))) => {
                r.submit_eval_rows(rows, vdata, idx, plan.eval_batch)?;
                Some(idx.len())
            }
            _ => None,
        };
        let sums = r.read_metrics()?;
        let val = val_rows.map(|rows| PassSums { rows, ..sums.eval });
        Ok(EpochSums { train: PassSums { rows: plan.order.len(), ..sums.train }, val, steps })
    }

    fn evaluate(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
        self.replica.evaluate_dataset(data, eval_batch)
    }

    fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()> {
        self.replica.set_learning_rate(lr, schedule)
    }

    fn train_step(&mut self, x: &[f32], labels: &[u32], t: u64) -> Result<PassSums> {
        let (loss, correct) = self.replica.train_step_direct(x, labels, t)?;
        Ok(PassSums { loss: loss as f64, correct: correct as f64, rows: labels.len(), task: Vec::new() })
    }

    fn parameters(&self) -> Result<Vec<f32>> {
        self.replica.read_params()
    }

    fn read_state(&self) -> Result<ExecutorState> {
        self.replica.read_state()
    }

    fn write_state(&mut self, state: &ExecutorState, _step: u64) -> Result<()> {
        self.replica.write_full_state(state)
    }

    fn snapshot_best(&mut self) -> Result<()> {
        self.replica.snapshot_best();
        Ok(())
    }

    fn restore_best(&mut self) -> Result<()> {
        self.replica.restore_best();
        Ok(())
    }
}
