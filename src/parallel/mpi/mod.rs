//! Training across processes and machines over MPI (feature `mpi`): [`MpiGroup`], the
//! processes `mpirun` started, as a [`ProcessGroup`].
//!
//! The gradient sum is exact and the same on every rank: MPI's `allreduce` does not promise
//! the same bits on every rank for floats (an implementation may add in a different order on
//! each), so the group does its own. Each rank owns a contiguous chunk of the gradient; every
//! rank sends each owner its part of that chunk; the owner adds the parts in rank order
//! starting from 0; then every owner sends its summed chunk to every rank. Each element is
//! added once, in rank order, by one rank, and copied everywhere. The traffic is that of a
//! ring all-reduce (each rank sends and receives `2 (N - 1) / N` of the gradient), in two
//! rounds of direct messages instead of `2 (N - 1)` ring steps.
//!
//! Every exchange is a round of nonblocking messages polled against the group's time limit
//! ([`exchange`]), so a peer that hangs ends the step with an error naming it instead of a
//! hang. A peer that dies is noticed sooner by `mpirun`, which ends the whole job and prints
//! the rank that died.

mod exchange;

use std::fmt;
use std::os::raw::c_int;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpi::environment::Universe;
use mpi::ffi;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::AsRaw;
use mpi::Threading;

use self::exchange::{error_text, round, Msg, RoundError};
use super::group::ProcessGroup;
use crate::error::{Error, Result};

/// How long a rank waits for a peer's message before it gives up on the peer: long enough for
/// the slowest rank to open its devices, tune its kernels or write a checkpoint.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Message tags, one per kind of round, so that rounds of different kinds never match.
const TAG_LEN: c_int = 11;
const TAG_BYTES: c_int = 12;
const TAG_SCATTER: c_int = 13;
const TAG_GATHER: c_int = 14;

/// The processes of one MPI job (`mpirun -np N ...`), for [`crate::Backend::Mpi`].
///
/// Create it once per process with [`MpiGroup::init`]; clones are handles on the same group.
/// Every rank must make the same calls in the same order. MPI is finalized when the last
/// clone is dropped, which waits for every rank: drop it at the end of a successful run
/// (`mpirun` counts a rank that exits without finalizing as failed), but after an error exit
/// non-zero without dropping it (`std::process::exit`), and `mpirun` ends the other ranks.
///
/// ```no_run
/// use wgtrain::data::{default_mnist_dir, load_mnist};
/// use wgtrain::{Backend, MpiGroup, Trainer, TrainerOptions};
///
/// fn train(group: &MpiGroup) -> wgtrain::Result<()> {
///     let options = TrainerOptions {
///         // This rank trains on its CPU; Backend::Gpu picks its adapters.
///         backend: Backend::Mpi { group: group.clone(), local: Box::new(Backend::Cpu) },
///         checkpoint_dir: Some("checkpoints".into()), // written by rank 0
///         ..TrainerOptions::default()
///     };
///     let mut trainer = Trainer::resume(options)?;
///     trainer.fit(&load_mnist(default_mnist_dir()?)?.train, None, |_| {})?;
///     if group.is_primary() {
///         trainer.model()?.save("model.safetensors")?;
///     }
///     Ok(())
/// }
///
/// let group = MpiGroup::init().unwrap_or_else(|e| panic!("{e}"));
/// if let Err(e) = train(&group) {
///     eprintln!("error: {e}");
///     std::process::exit(1); // without finalizing MPI: mpirun ends the other ranks
/// }
/// drop(group); // finalizes MPI once every rank gets here
/// ```
#[derive(Clone)]
pub struct MpiGroup {
    comm: Arc<Mutex<Comm>>,
    rank: usize,
    size: usize,
    local_rank: usize,
}

impl fmt::Debug for MpiGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MpiGroup {{ rank: {}, size: {}, local_rank: {} }}", self.rank, self.size, self.local_rank)
    }
}

/// The group's state behind its lock.
struct Comm {
    /// A duplicate of `MPI_COMM_WORLD` (the group's messages never meet the application's),
    /// and the universe that finalizes MPI when dropped, after the communicator is freed.
    mpi: Option<(SimpleCommunicator, Universe)>,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// Set by the first failed round; every later call returns it.
    broken: Option<(Option<usize>, String)>,
    exchange_secs: f64,
    /// The rounds' buffers (leaked, and left empty, after a timeout).
    send: Vec<u8>,
    recv: Vec<u8>,
}

impl Drop for Comm {
    /// A broken group has requests pending on a peer that will never answer: freeing its
    /// communicator or finalizing MPI (which waits for every rank) could block forever, so
    /// both are skipped; the process is about to exit, and `mpirun` cleans up.
    fn drop(&mut self) {
        if self.broken.is_some() {
            std::mem::forget(self.mpi.take());
        }
    }
}

// SAFETY: MPI was initialized with at least MPI_THREAD_SERIALIZED (checked in `init`), which
// allows calls from any thread as long as no two are concurrent; every call on `Comm` is made
// under the group's mutex.
unsafe impl Send for Comm {}

impl MpiGroup {
    /// Initializes MPI (at the "serialized" thread level: the trainer may call it from the
    /// thread of `fit_async`) and joins the job `mpirun` started; a process started without
    /// `mpirun` is a group of one.
    pub fn init() -> Result<MpiGroup> {
        let (universe, threading) =
            mpi::initialize_with_threading(Threading::Serialized).ok_or_else(|| {
                Error::Config(
                    "MPI is already initialized in this process: create one MpiGroup and clone it".into(),
                )
            })?;
        if threading < Threading::Serialized {
            return Err(Error::Config(format!(
                "this MPI library offers thread level {threading:?}; wgtrain needs Serialized or Multiple"
            )));
        }
        let world = universe.world().duplicate();
        // SAFETY: `world` is a valid communicator; the handler is a predefined one.
        let rc = unsafe { ffi::MPI_Comm_set_errhandler(world.as_raw(), ffi::RSMPI_ERRORS_RETURN) };
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        if rc != ffi::MPI_SUCCESS as c_int {
            let reason = format!("could not make MPI return errors: {}", error_text(rc));
            return Err(Error::Distributed { rank, peer: None, reason });
        }
        let local_rank = world.split_shared(rank as c_int).rank() as usize;
        let comm = Comm {
            mpi: Some((world, universe)),
            rank,
            size,
            timeout: DEFAULT_TIMEOUT,
            broken: None,
            exchange_secs: 0.0,
            send: Vec::new(),
            recv: Vec::new(),
        };
        Ok(MpiGroup { comm: Arc::new(Mutex::new(comm)), rank, size, local_rank })
    }

    /// This process's rank, `0..size()`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Processes in the job.
    pub fn size(&self) -> usize {
        self.size
    }

    /// This process's rank among those on the same machine (to pick one GPU per process).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// Rank 0: the process that prints, writes checkpoints and saves the model.
    pub fn is_primary(&self) -> bool {
        self.rank == 0
    }

    /// How long a rank waits for a peer before it fails with an error naming the peer
    /// ([`DEFAULT_TIMEOUT`] unless set). Set the same on every rank.
    pub fn set_timeout(&self, timeout: Duration) -> Result<()> {
        self.lock()?.timeout = timeout;
        Ok(())
    }

    /// `bytes` of every rank, in rank order (each rank may send a different length): for an
    /// application's own checks, e.g. that every rank ends with the same weights.
    pub fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.lock()?.all_gather(bytes)
    }

    /// Replaces `values` with the element-wise sum of every rank's `values` (the same length
    /// on every rank), added in rank order starting from 0: the same bits on every rank. The
    /// trainer's gradient reduction.
    pub fn sum_in_rank_order(&self, values: &mut [f32]) -> Result<()> {
        if self.size == 1 {
            return Ok(());
        }
        self.lock()?.sum_f32(values)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Comm>> {
        self.comm.lock().map_err(|_| Error::Distributed {
            rank: self.rank,
            peer: None,
            reason: "a thread panicked while it held the MPI group".into(),
        })
    }
}

impl Comm {
    /// The error of a broken group.
    fn failed(&self) -> Result<()> {
        match &self.broken {
            Some((peer, reason)) => {
                Err(Error::Distributed { rank: self.rank, peer: *peer, reason: reason.clone() })
            }
            None => Ok(()),
        }
    }

    /// One round (see [`round`]) on the group's buffers; a failure breaks the group.
    fn round(&mut self, tag: c_int, sends: &[Msg], recvs: &[Msg], what: &str) -> Result<()> {
        self.failed()?;
        let comm = match &self.mpi {
            Some((world, _)) => world.as_raw(),
            None => {
                let reason = "MPI was finalized".to_string();
                return Err(Error::Distributed { rank: self.rank, peer: None, reason });
            }
        };
        let outcome = round(comm, tag, &mut self.send, sends, &mut self.recv, recvs, self.timeout);
        let broken = match outcome {
            Ok(()) => return Ok(()),
            Err(RoundError::Stalled { silent, deaf }) => {
                let (peer, did) = match (silent.first(), deaf.first()) {
                    (Some(&p), _) => (p, "sent nothing"),
                    (None, Some(&p)) => (p, "took nothing"),
                    (None, None) => (self.rank, "stalled"),
                };
                let reason = format!(
                    "rank {peer} {did} for {:.0} s while {what}: it died or hangs (mpirun names a rank \
                     that died). End every rank and resume from rank 0's last checkpoint",
                    self.timeout.as_secs_f64()
                );
                (Some(peer), reason)
            }
            Err(RoundError::Bounds(m)) => (None, format!("{what}: {m}")),
            Err(RoundError::Mpi(m)) => (None, format!("MPI failed while {what}: {m}")),
        };
        self.broken = Some(broken);
        self.failed()
    }

    /// Readies the buffers of a round: `send` to send, `recv_len` bytes to receive into. They
    /// keep their capacity from round to round (a fresh 200 KB buffer per round is a fresh
    /// mapping and its page faults).
    fn fill(&mut self, send: &[u8], recv_len: usize) {
        self.send.clear();
        self.send.extend_from_slice(send);
        self.recv.clear();
        self.recv.resize(recv_len, 0);
    }

    /// Messages of `len` bytes at `offset(peer)` to or from every other rank.
    fn to_all(&self, offset: impl Fn(usize) -> usize, len: impl Fn(usize) -> usize) -> Vec<Msg> {
        (0..self.size)
            .filter(|&p| p != self.rank)
            .map(|p| Msg { peer: p, offset: offset(p), len: len(p) })
            .collect()
    }

    fn all_gather(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        // Round 1: every rank's length.
        self.fill(&(bytes.len() as u64).to_le_bytes(), 8 * self.size);
        let sends = self.to_all(|_| 0, |_| 8);
        let recvs = self.to_all(|p| 8 * p, |_| 8);
        self.round(TAG_LEN, &sends, &recvs, "exchanging message lengths")?;
        let mut lens: Vec<usize> = self
            .recv
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as usize)
            .collect();
        lens[self.rank] = bytes.len();
        // Round 2: the bytes, each rank's at its prefix offset.
        let starts: Vec<usize> = lens
            .iter()
            .scan(0, |acc, &l| {
                let s = *acc;
                *acc += l;
                Some(s)
            })
            .collect();
        self.fill(bytes, lens.iter().sum());
        let sends = self.to_all(|_| 0, |_| bytes.len());
        let recvs = self.to_all(|p| starts[p], |p| lens[p]);
        self.round(TAG_BYTES, &sends, &recvs, "gathering every rank's values")?;
        let mut out: Vec<Vec<u8>> =
            (0..self.size).map(|p| self.recv[starts[p]..starts[p] + lens[p]].to_vec()).collect();
        out[self.rank] = bytes.to_vec();
        Ok(out)
    }

    /// The rank-ordered sum of the module docs: scatter the chunks to their owners, add in rank
    /// order, gather the sums.
    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()> {
        let start = Instant::now();
        let result = self.sum_f32_rounds(values);
        self.exchange_secs += start.elapsed().as_secs_f64();
        result
    }

    fn sum_f32_rounds(&mut self, values: &mut [f32]) -> Result<()> {
        let (n, me) = (self.size, self.rank);
        // Chunk p (in floats) is [bound(p), bound(p + 1)).
        let len = values.len();
        let bound = |p: usize| (len as u128 * p as u128 / n as u128) as usize;
        let mine = bound(me)..bound(me + 1);
        // Round 1: chunk p of this rank's values to rank p; every rank's part of my chunk
        // into slot p of the receive buffer.
        self.fill(bytemuck::cast_slice(values), 4 * mine.len() * n);
        let sends = self.to_all(|p| 4 * bound(p), |p| 4 * (bound(p + 1) - bound(p)));
        let recvs = self.to_all(|p| 4 * mine.len() * p, |_| 4 * mine.len());
        self.round(TAG_SCATTER, &sends, &recvs, "exchanging gradients")?;
        let mut sum = vec![0.0f32; mine.len()];
        for p in 0..n {
            if p == me {
                sum.iter_mut().zip(&values[mine.clone()]).for_each(|(s, v)| *s += *v);
            } else {
                let part = &self.recv[4 * mine.len() * p..4 * mine.len() * (p + 1)];
                sum.iter_mut().zip(floats(part)).for_each(|(s, v)| *s += v);
            }
        }
        // Round 2: my summed chunk to every rank; every rank's summed chunk into its place.
        self.fill(bytemuck::cast_slice(&sum), 4 * values.len());
        let sends = self.to_all(|_| 0, |_| 4 * mine.len());
        let recvs = self.to_all(|p| 4 * bound(p), |p| 4 * (bound(p + 1) - bound(p)));
        self.round(TAG_GATHER, &sends, &recvs, "exchanging summed gradients")?;
        for p in (0..n).filter(|&p| p != me) {
            let chunk = &self.recv[4 * bound(p)..4 * bound(p + 1)];
            values[bound(p)..bound(p + 1)].iter_mut().zip(floats(chunk)).for_each(|(v, c)| *v = c);
        }
        values[mine].copy_from_slice(&sum);
        Ok(())
    }
}

/// Floats from bytes in the machine's order (as `bytemuck` wrote them), whatever the bytes'
/// alignment.
fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes.chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
}

impl ProcessGroup for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        MpiGroup::all_gather(self, bytes)
    }

    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()> {
        self.sum_in_rank_order(values)
    }

    fn exchange_secs(&self) -> f64 {
        self.lock().map_or(0.0, |c| c.exchange_secs)
    }

    fn clone_box(&self) -> Box<dyn ProcessGroup> {
        Box::new(self.clone())
    }
}
