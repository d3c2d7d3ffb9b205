//! Data-parallel training (MirroredStrategy / DDP semantics): the model mirrored on every
//! replica from identical weights; each global batch split across replicas; each replica's
//! gradients copied into a host-mapped staging buffer; the host sums them into one shared
//! buffer; the sum goes back to every replica, which applies the same optimizer update.
//!
//! All replicas are submitted before any is waited on, and their staging buffers are mapped
//! asynchronously, so replicas on different devices compute at the same time.
//!
//! Across processes (feature `mpi`) the replicas of this process are a [`Shard`] of every
//! process's: they take their slices of the global split, the reducer adds the other
//! processes' sums after this process's own, and the epoch's sums are combined in rank order.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::group::Shard;
use super::host_reduce::HostReducer;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::{
    EpochPlan, EpochSums, Executor, ExecutorState, GradientReducer, ParallelStats, PassSums, StepHook,
    ValSource,
};
use crate::gpu::kernels::GatherStep;
use crate::gpu::replica::{PassKind, Replica, SourceId};
use crate::gpu::Gpu;
use crate::spec::{Loss, LrSchedule, Network, Optimizer};

/// Prefixes an error with the replica it came from.
fn on_replica(r: usize, e: Error) -> Error {
    match e {
        Error::DeviceLost { adapter, reason } => {
            Error::DeviceLost { adapter: format!("replica {r} on {adapter}"), reason }
        }
        Error::Gpu { adapter, context, message } => {
            Error::Gpu { adapter: format!("replica {r} on {adapter}"), context, message }
        }
        Error::OutOfMemory { adapter, what } => {
            Error::OutOfMemory { adapter: format!("replica {r} on {adapter}"), what }
        }
        other => other,
    }
}

/// The replicas and the shared staging state: the mirrored devices as one [`Executor`].
pub(crate) struct Mirrored {
    /// One per device, in the order of the devices given to [`Mirrored::new`]; their
    /// parameters stay identical after every step.
    replicas: Vec<Replica>,
    /// This process's replicas in the global list of every process's, with their relative
    /// speeds (batch shares are proportional to them).
    shard: Shard,
    /// One MAP_READ buffer per replica for its gradients.
    staging: Vec<wgpu::Buffer>,
    /// The shared staging buffer the gradients are reduced into.
    reduced: Vec<f32>,
    /// How the replicas' gradients become one.
    reducer: Box<dyn GradientReducer>,
    train: Vec<SourceId>,
    val: Vec<Option<SourceId>>,
    /// Timing since construction, summed over steps.
    stats: ParallelStats,
}

impl Mirrored {
    /// One replica per device, all from the same `params`.
    pub fn new(
        gpus: Vec<Gpu>,
        spec: &Network,
        optimizer: Optimizer,
        loss: Loss,
        params: &[f32],
        max_rows: usize,
    ) -> Result<Self> {
        let mut replicas = Vec::new();
        let mut staging = Vec::new();
        for (r, gpu) in gpus.into_iter().enumerate() {
            let mut replica =
                Replica::new(gpu, spec, optimizer, params, max_rows).map_err(|e| on_replica(r, e))?;
            replica.set_loss(loss).map_err(|e| on_replica(r, e))?;
            let bytes = (replica.parameter_len() * 4) as u64;
            let g = &replica.gpu;
            staging.push(g.scoped("creating a gradient staging buffer", || {
                g.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("gradient staging"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?);
            replicas.push(replica);
        }
        let n = replicas.len();
        let len = replicas.first().map_or(0, |r| r.parameter_len());
        Ok(Mirrored {
            replicas,
            shard: Shard::solo(vec![1.0; n]),
            staging,
            reduced: vec![0.0; len],
            reducer: Box::new(HostReducer),
            train: Vec::new(),
            val: Vec::new(),
            stats: ParallelStats { rows_per_replica: vec![0; n], ..Default::default() },
        })
    }

    /// Batch shares proportional to `weights` (e.g. measured samples/s); equal by default.
    pub fn set_weights(&mut self, weights: Vec<f64>) -> Result<()> {
        self.shard.set_solo_weights(weights)
    }

    /// Makes these replicas `shard`'s slice of every process's replicas (`shard` was joined
    /// with this process's replica weights).
    #[cfg(feature = "mpi")]
    pub fn join(&mut self, shard: Shard) {
        self.reducer = shard.reducer();
        self.shard = shard;
    }

    /// Uploads the data to every replica; the validation rows are sharded across replicas.
    fn upload(&mut self, data: &Dataset, train_idx: &[u32], val: Option<(&Dataset, &[u32])>) -> Result<()> {
        let val_shares = self.shard.local_even_shares(val.map_or(0, |(_, idx)| idx.len()))?;
        self.train.clear();
        self.val.clear();
        for (r, replica) in self.replicas.iter_mut().enumerate() {
            let (start, rows) = val_shares[r];
            let part = val.map(|(vdata, idx)| (vdata, &idx[start..start + rows]));
            let (train, val_id) =
                replica.load_sources(data, train_idx, part).map_err(|e| on_replica(r, e))?;
            self.train.push(train);
            self.val.push(val_id);
        }
        Ok(())
    }

    /// One epoch over `order` in global batches of `batch` rows: `(train sums, validation
    /// sums, steps)` with the rows left for the caller to fill.
    fn epoch(
        &mut self,
        order: &[u32],
        batch: usize,
        first_step: u64,
        eval_batch: usize,
        hook: StepHook<'_>,
    ) -> Result<(PassSums, PassSums, usize)> {
        if self.train.len() != self.replicas.len() {
            return Err(Error::Config("fit has not uploaded its data".into()));
        }
        for (r, replica) in self.replicas.iter().enumerate() {
            replica.set_order(self.train[r], order).map_err(|e| on_replica(r, e))?;
            replica.clear_metrics();
        }
        let full = order.len() / batch;
        let tail = order.len() % batch;
        // Per replica: (plan, rows) for full steps and for the tail step.
        let full_plans = self.plans(batch, full, 0, first_step + 1)?;
        let tail_plans = if tail > 0 {
            self.plans(tail, 1, full * batch, first_step + full as u64 + 1)?
        } else {
            Vec::new()
        };
        let steps = full + usize::from(tail > 0);
        for step in 0..steps {
            let (plans, s) = if step < full { (&full_plans, step) } else { (&tail_plans, 0) };
            self.step(plans, s, first_step + step as u64 + 1)?;
            if step % 16 == 15 {
                hook(step + 1)?;
            }
        }
        let mut sums = [PassSums::default(), PassSums::default()];
        for (r, replica) in self.replicas.iter_mut().enumerate() {
            if let Some(v) = self.val[r] {
                replica.submit_eval(v, eval_batch).map_err(|e| on_replica(r, e))?;
            }
        }
        for (r, replica) in self.replicas.iter().enumerate() {
            let m = replica.read_metrics().map_err(|e| on_replica(r, e))?;
            // The loss's task sums (e.g. the mean squared error's per output) add up across
            // replicas as the loss does: each replica's are sums over its own rows.
            sums[0].add(&m.train);
            sums[1].add(&m.eval);
        }
        self.shard.combine(&mut sums)?;
        let [train, val] = sums;
        Ok((train, val, steps))
    }

    /// Records (or finds) each replica's gradient plan for `steps` launches of a batch of
    /// `rows` rows whose first launch starts at `base` and is optimizer step `first_t`.
    fn plans(
        &mut self,
        rows: usize,
        steps: usize,
        base: usize,
        first_t: u64,
    ) -> Result<Vec<Option<(usize, usize)>>> {
        let shares = self.shard.local_shares(rows)?;
        let mut out = Vec::new();
        for (r, replica) in self.replicas.iter_mut().enumerate() {
            let (start, share) = shares[r];
            if share == 0 || steps == 0 {
                out.push(None);
                continue;
            }
            // The replica's rows start at `start` in the global batch: its dropout masks are
            // those rows' masks, the ones a single device computing the batch draws.
            let starts: Vec<GatherStep> = (0..steps)
                .map(|s| GatherStep::new(base + s * rows + start, first_t + s as u64, start))
                .collect();
            // Scale by the global batch: the replicas' gradients then sum to the mean's.
            let p = replica
                .plan(self.train[r], share, PassKind::Grads, rows, &starts)
                .map_err(|e| on_replica(r, e))?;
            out.push(Some((p, share)));
        }
        Ok(out)
    }

    /// One data-parallel step: gradients everywhere, host reduction, the same update everywhere.
    fn step(&mut self, plans: &[Option<(usize, usize)>], s: usize, t: u64) -> Result<()> {
        let start = Instant::now();
        for (r, plan) in plans.iter().enumerate() {
            if let Some((p, rows)) = plan {
                self.replicas[r].submit_grads(*p, s, &self.staging[r]);
                self.stats.rows_per_replica[r] += rows;
            }
        }
        let flags: Vec<Arc<Mutex<Option<bool>>>> = (0..plans.len()).map(|_| Arc::default()).collect();
        for (r, plan) in plans.iter().enumerate() {
            if plan.is_some() {
                let flag = Arc::clone(&flags[r]);
                self.staging[r].slice(..).map_async(wgpu::MapMode::Read, move |res| {
                    if let Ok(mut f) = flag.lock() {
                        *f = Some(res.is_ok());
                    }
                });
            }
        }
        for (r, plan) in plans.iter().enumerate() {
            if plan.is_some() {
                self.replicas[r].gpu.wait().map_err(|e| on_replica(r, e))?;
                if flags[r].lock().ok().and_then(|f| *f) != Some(true) {
                    let gpu = &self.replicas[r].gpu;
                    return Err(on_replica(
                        r,
                        Error::DeviceLost {
                            adapter: gpu.report.label(),
                            reason: "gradient download failed".into(),
                        },
                    ));
                }
            }
        }
        let mapped = Instant::now();
        let exchanged = self.shard.exchange_secs();
        self.reduce(plans)?;
        let reduced = Instant::now();
        let exchange = self.shard.exchange_secs() - exchanged;
        for (r, replica) in self.replicas.iter().enumerate() {
            replica.submit_update(&self.reduced, t).map_err(|e| on_replica(r, e))?;
        }
        self.stats.steps += 1;
        self.stats.compute_and_download_secs += (mapped - start).as_secs_f64();
        self.stats.reduce_secs += (reduced - mapped).as_secs_f64() - exchange;
        self.stats.exchange_secs += exchange;
        self.stats.upload_secs += reduced.elapsed().as_secs_f64();
        Ok(())
    }

    /// Reduces the mapped staging buffers into the shared one, then unmaps them.
    fn reduce(&mut self, plans: &[Option<(usize, usize)>]) -> Result<()> {
        let views: Vec<wgpu::BufferView> = plans
            .iter()
            .zip(&self.staging)
            .filter(|(p, _)| p.is_some())
            .map(|(_, b)| b.slice(..).get_mapped_range())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Gpu {
                adapter: "host".into(),
                context: "reading gradients".into(),
                message: e.to_string(),
            })?;
        let parts: Vec<&[f32]> = views
            .iter()
            .map(|v| bytemuck::try_cast_slice::<u8, f32>(v))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Gpu {
                adapter: "host".into(),
                context: "reading gradients".into(),
                message: e.to_string(),
            })?;
        let result = self.reducer.reduce(&parts, &mut self.reduced);
        drop(parts);
        drop(views);
        for (p, b) in plans.iter().zip(&self.staging) {
            if p.is_some() {
                b.unmap();
            }
        }
        result
    }
}

impl Executor for Mirrored {
    fn devices(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.gpu.report.label()).collect()
    }

    fn dispatches_per_step(&self) -> usize {
        self.replicas.first().map_or(0, |r| r.dispatches_per_step())
    }

    fn parallel_stats(&self) -> Option<ParallelStats> {
        Some(self.stats.clone())
    }

    fn is_primary(&self) -> bool {
        self.shard.rank() == 0
    }

    fn prepare(&mut self, data: &Dataset, train_idx: &[u32], val: &ValSource<'_>) -> Result<()> {
        let mut all = Vec::new();
        self.upload(data, train_idx, val.rows(data, &mut all))
    }

    fn run_epoch(
        &mut self,
        _data: &Dataset,
        val: &ValSource<'_>,
        plan: &EpochPlan<'_>,
        hook: StepHook<'_>,
    ) -> Result<EpochSums> {
        if self.shard.is_distributed() {
            let params = self.parameters()?;
            self.shard.check_agreement(plan.first_step, &params)?;
        }
        let (train, val_sums, steps) =
            self.epoch(plan.order, plan.batch, plan.first_step, plan.eval_batch, hook)?;
        let val = match val {
            ValSource::None => None,
            v => Some(PassSums { rows: v.len(), ..val_sums }),
        };
        Ok(EpochSums { train: PassSums { rows: plan.order.len(), ..train }, val, steps })
    }

    /// Evaluation runs on the first replica (all hold the same weights).
    fn evaluate(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
        let replica = self.replicas.first_mut().ok_or_else(|| Error::Config("no replicas".into()))?;
        replica.evaluate_dataset(data, eval_batch).map_err(|e| on_replica(0, e))
    }

    fn train_step(&mut self, _x: &[f32], _labels: &[u32], _t: u64) -> Result<PassSums> {
        Err(Error::Config("train_step runs on one device; use fit for data parallel".into()))
    }

    /// All replicas hold the same weights: after a device failure, any healthy one still has
    /// those of the last completed step.
    fn parameters(&self) -> Result<Vec<f32>> {
        let mut last = Err(Error::NoAdapter { detail: ": no replica left".into() });
        for r in &self.replicas {
            last = r.read_params();
            if last.is_ok() {
                break;
            }
        }
        last
    }

    fn replica_parameters(&self) -> Result<Vec<Vec<f32>>> {
        self.replicas.iter().map(|r| r.read_params()).collect()
    }

    fn read_state(&self) -> Result<ExecutorState> {
        self.replicas.first().ok_or_else(|| Error::Config("no replicas".into()))?.read_state()
    }

    fn write_state(&mut self, state: &ExecutorState, _step: u64) -> Result<()> {
        for (r, replica) in self.replicas.iter().enumerate() {
            replica.write_full_state(state).map_err(|e| on_replica(r, e))?;
        }
        Ok(())
    }

    /// Every replica together: they must apply the same update.
    fn set_learning_rate(&mut self, lr: f32, schedule: LrSchedule) -> Result<()> {
        self.replicas.iter_mut().try_for_each(|r| r.set_learning_rate(lr, schedule))
    }

    fn snapshot_best(&mut self) -> Result<()> {
        self.replicas.iter().for_each(|r| r.snapshot_best());
        Ok(())
    }

    fn restore_best(&mut self) -> Result<()> {
        self.replicas.iter().for_each(|r| r.restore_best());
        Ok(())
    }
}
