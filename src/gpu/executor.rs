//! The model on one wgpu device as an [`Executor`]: a [`Replica`] with the training (and
//! validation) rows resident, whole epochs submitted without waiting, and the epoch's sums read
//! back once at its end.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::{EpochPlan, EpochSums, Executor, ExecutorState, PassSums, StepHook, ValSource};
use crate::spec::{Loss, LrSchedule, Network, Optimizer};

use super::replica::{Replica, SourceId};
use super::Gpu;

/// One replica on one device.
pub(crate) struct DeviceExecutor {
    replica: Replica,
    train: Option<SourceId>,
    val: Option<SourceId>,
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
}

impl Executor for DeviceExecutor {
    fn devices(&self) -> Vec<String> {
        vec![self.replica.gpu.report.label()]
    }

    fn dispatches_per_step(&self) -> usize {
        self.replica.dispatches_per_step()
    }

    /// Uploads the training rows `train_idx` of `data` and the validation rows, once per fit.
    fn prepare(&mut self, data: &Dataset, train_idx: &[u32], val: &ValSource<'_>) -> Result<()> {
        let mut all = Vec::new();
        let (train, val) = self.replica.load_sources(data, train_idx, val.rows(data, &mut all))?;
        self.train = Some(train);
        self.val = val;
        Ok(())
    }

    fn run_epoch(
        &mut self,
        _data: &Dataset,
        _val: &ValSource<'_>,
        plan: &EpochPlan<'_>,
        hook: StepHook<'_>,
    ) -> Result<EpochSums> {
        let train = self.train.ok_or_else(|| Error::Config("fit has not uploaded its data".into()))?;
        let r = &mut self.replica;
        r.set_order(train, plan.order)?;
        r.clear_metrics();
        let steps = r.submit_epoch(train, plan.batch, plan.first_step, hook)?;
        if let Some(val) = self.val {
            r.submit_eval(val, plan.eval_batch)?;
        }
        let sums = r.read_metrics()?;
        let val = self.val.map(|v| PassSums { rows: r.source_len(v), ..sums.eval });
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
