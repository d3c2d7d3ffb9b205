//! The executor of one process of an MPI job (feature `mpi`): this process's replicas from
//! its own local backend, then the join in which every rank learns every rank's replicas, or
//! learns that one could not open its own, and then every rank fails naming it.

use crate::error::{Error, Result};
use crate::exec::Executor;
use crate::gpu;
use crate::parallel::{CpuShard, Mirrored, MpiGroup, Shard};
use crate::train::options::{Backend, TrainerOptions};

/// This process's replicas before the join.
enum Local {
    Cpu(Box<CpuShard>),
    Gpus(Box<Mirrored>),
}

/// Opens `local` with `params`, joins `group` and returns the executor; fails on every rank
/// if any rank could not open its replicas.
pub(super) fn open(
    options: &TrainerOptions,
    group: &MpiGroup,
    local: &Backend,
    params: &[f32],
) -> Result<Box<dyn Executor>> {
    let built = open_local(options, local, params);
    let weights = built.as_ref().map(|(_, w)| w.clone()).map_err(|e| e.to_string());
    let shard = Shard::join(Box::new(group.clone()), weights)?;
    // Every rank opened its replicas, or the join above failed on every rank.
    Ok(match built?.0 {
        Local::Cpu(mut cpu) => {
            cpu.join(shard);
            cpu
        }
        Local::Gpus(mut mirrored) => {
            mirrored.join(shard);
            mirrored
        }
    })
}

/// This process's replicas and their weights (`options.replica_weights`, or equal).
fn open_local(options: &TrainerOptions, local: &Backend, params: &[f32]) -> Result<(Local, Vec<f64>)> {
    let weights = |n: usize| -> Result<Vec<f64>> {
        let weights = options.replica_weights.clone().unwrap_or_else(|| vec![1.0; n]);
        if weights.len() != n {
            let msg = format!("{} replica weights for this process's {n} replicas", weights.len());
            return Err(Error::Config(msg));
        }
        Ok(weights)
    };
    let replicas = match local {
        Backend::Cpu => {
            let cpu = CpuShard::new(&options.spec, options.optimizer, options.loss, params)?;
            return Ok((Local::Cpu(Box::new(cpu)), weights(1)?));
        }
        Backend::Gpu { selection, replicas_per_adapter } => gpu::open(selection, *replicas_per_adapter)?,
        Backend::Devices(gpus) => gpus.clone(),
        // Each rank picks for itself: its machine's best hardware GPU, else its CPU.
        Backend::Auto => return open_local(options, &local.resolve().backend, params),
        Backend::Mpi { .. } => {
            return Err(Error::Config("the local backend of Backend::Mpi must be Cpu, Gpu or Devices".into()))
        }
    };
    if replicas.is_empty() {
        return Err(Error::NoAdapter { detail: ": the device list is empty".into() });
    }
    let weights = weights(replicas.len())?;
    let max_rows = options.batch_size.max(options.eval_batch);
    let mirrored = Mirrored::new(replicas, &options.spec, options.optimizer, options.loss, params, max_rows)?;
    Ok((Local::Gpus(Box::new(mirrored)), weights))
}
