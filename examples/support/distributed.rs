//! What the examples need to run as one process of an MPI job (`--distributed mpi`, built
//! with `--features mpi`), and the stand-in that explains how to get it when built without.
//! Included by `mnist.rs` and `bench.rs` with `#[path]`.
//!
//! The group lives in `main` until a successful end: dropping it finalizes MPI, which waits
//! for every rank, so after an error a rank exits at once ([`fail`]) and mpirun ends the
//! others.

#![allow(dead_code)]

use std::io::Write;

use wgtrain::{AdapterSelection, Backend, Error};

/// Prints `error: ...` in one write (ranks' lines then never interleave) and exits non-zero
/// without finalizing MPI.
pub fn fail(e: Error) -> ! {
    let _ = std::io::stderr().write_all(format!("error: {e}\n").as_bytes());
    std::process::exit(1);
}

#[cfg(feature = "mpi")]
mod imp {
    use std::time::Duration;

    use wgtrain::gpu::{list_adapters, select};
    use wgtrain::{AdapterSelection, Backend, Error, MpiGroup};

    /// This process's MPI job.
    pub type Group = MpiGroup;

    /// Joins the job `mpirun` started when `mode` is `mpi`, waiting up to `timeout_secs` for
    /// a peer's message.
    pub fn join(mode: Option<&str>, timeout_secs: u64) -> Result<Option<Group>, Error> {
        match mode {
            None => Ok(None),
            Some("mpi") => {
                let group = MpiGroup::init()?;
                group.set_timeout(Duration::from_secs(timeout_secs))?;
                Ok(Some(group))
            }
            Some(other) => Err(Error::Config(format!("--distributed {other}: the only mode is mpi"))),
        }
    }

    /// `local` as this process's part of the group's training.
    pub fn backend(group: Option<&Group>, local: Backend) -> Backend {
        match group {
            Some(g) => Backend::Mpi { group: g.clone(), local: Box::new(local) },
            None => local,
        }
    }

    /// Whether this process prints and writes files: rank 0, or the only process.
    pub fn is_primary(group: Option<&Group>) -> bool {
        group.is_none_or(|g| g.is_primary())
    }

    /// Processes in the group (1 alone).
    pub fn size(group: Option<&Group>) -> usize {
        group.map_or(1, |g| g.size())
    }

    /// `rank N of M: ` in a group, nothing alone.
    pub fn describe(group: Option<&Group>) -> String {
        group.map_or(String::new(), |g| format!("{} processes (mpi), this is rank {}: ", g.size(), g.rank()))
    }

    /// One adapter per process: the local rank's among the best adapter of each physical
    /// device (so `mpirun -np 4` on a 4-GPU host gives each rank its own GPU).
    pub fn local_rank_adapter(group: Option<&Group>) -> Result<AdapterSelection, Error> {
        let reports = list_adapters();
        let best = select(&reports, &AdapterSelection::BestPerDevice)?;
        let local = group.map_or(0, |g| g.local_rank());
        match best.get(local % best.len().max(1)) {
            Some(&i) => Ok(AdapterSelection::Indices(vec![i])),
            None => Err(Error::NoAdapter { detail: format!(": none for local rank {local}") }),
        }
    }

    /// Median seconds of `reps` rank-ordered sums of `len` floats, every rank doing nothing
    /// else: the exchange's own cost. `None` alone.
    pub fn time_exchange(group: Option<&Group>, len: usize, reps: usize) -> Result<Option<f64>, Error> {
        let Some(g) = group else { return Ok(None) };
        let mut values = vec![1.0f32; len];
        let mut secs = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = std::time::Instant::now();
            g.sum_in_rank_order(&mut values)?;
            secs.push(t.elapsed().as_secs_f64());
            values.fill(1.0);
        }
        secs.sort_by(f64::total_cmp);
        Ok(secs.get(secs.len() / 2).copied())
    }

    /// Whether every rank holds bit-identical `params` (a fingerprint of their bits compared
    /// across the group); `None` alone.
    pub fn identical_everywhere(group: Option<&Group>, params: &[f32]) -> Result<Option<bool>, Error> {
        let Some(g) = group else { return Ok(None) };
        let hash = params.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, p| {
            (h ^ u64::from(p.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let all = g.all_gather(&hash.to_le_bytes())?;
        Ok(Some(all.iter().all(|h| h == &all[0])))
    }
}

#[cfg(not(feature = "mpi"))]
mod imp {
    use wgtrain::{AdapterSelection, Backend, Error};

    /// No group exists without the `mpi` feature.
    pub enum Group {}

    pub fn join(mode: Option<&str>, _timeout_secs: u64) -> Result<Option<Group>, Error> {
        match mode {
            None => Ok(None),
            Some(_) => Err(Error::Config(
                "--distributed needs MPI: install Open MPI and build with --features mpi (see README, \
                 \"Many machines\")"
                    .into(),
            )),
        }
    }

    pub fn backend(_group: Option<&Group>, local: Backend) -> Backend {
        local
    }

    pub fn is_primary(_group: Option<&Group>) -> bool {
        true
    }

    pub fn size(_group: Option<&Group>) -> usize {
        1
    }

    pub fn describe(_group: Option<&Group>) -> String {
        String::new()
    }

    pub fn local_rank_adapter(_group: Option<&Group>) -> Result<AdapterSelection, Error> {
        Ok(AdapterSelection::BestPerDevice)
    }

    pub fn identical_everywhere(_group: Option<&Group>, _params: &[f32]) -> Result<Option<bool>, Error> {
        Ok(None)
    }

    pub fn time_exchange(_group: Option<&Group>, _len: usize, _reps: usize) -> Result<Option<f64>, Error> {
        Ok(None)
    }
}

pub use imp::*;

/// The adapters `--adapter` names: `local-rank` picks one per process (see
/// [`local_rank_adapter`]), anything else parses as an [`AdapterSelection`].
pub fn adapters(arg: &str, group: Option<&Group>) -> Result<AdapterSelection, Error> {
    match arg {
        "local-rank" => local_rank_adapter(group),
        other => other.parse(),
    }
}

/// `--adapter local-rank` as the index that `--adapter` parses (`3`).
pub fn local_rank_index(group: Option<&Group>) -> Result<String, Error> {
    match local_rank_adapter(group)? {
        AdapterSelection::Indices(i) => Ok(i.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")),
        _ => Ok("best".into()),
    }
}

/// `Backend::Cpu` for `cpu`, else the adapters `arg` names with `replicas` devices on each,
/// as this process's part of the group's training.
pub fn local_backend(arg: &str, replicas: usize, group: Option<&Group>) -> Result<Backend, Error> {
    let local = match arg {
        "cpu" => Backend::Cpu,
        _ => Backend::Gpu { selection: adapters(arg, group)?, replicas_per_adapter: replicas },
    };
    Ok(backend(group, local))
}
