//! The processes one data-parallel run spans, as the executors of this module see them: a
//! rank, a size, and two exchanges ([`ProcessGroup`]). One process alone is [`Solo`]; the
//! `mpi` feature adds the group over MPI (`parallel/mpi/`).
//!
//! [`Shard`] places this process's replicas in the global list of every process's replicas
//! (rank order, then local order). Every global batch is split over that list, so a replica
//! gets the same rows whether its neighbours run in its own process or in another one, and
//! 2 processes of 1 replica sum the same per-replica gradients as 1 process of 2 replicas.
//! Everything the processes must agree on goes through it: the split, the reduced gradients,
//! the epoch's loss and accuracy sums (added in rank order, so every rank's early stopping
//! sees the same bits), and a fingerprint of the weights at every epoch's start.

use super::batch_split::{offsets, split_rows};
use super::host_reduce::reduce_into;
use crate::error::{Error, Result};
use crate::exec::{GradientReducer, PassSums};

/// The processes of one run. Every rank calls the same methods in the same order.
pub(crate) trait ProcessGroup: Send {
    /// This process's place in the group, `0..size`.
    fn rank(&self) -> usize;

    /// Processes in the group.
    fn size(&self) -> usize;

    /// `bytes` of every rank, in rank order (each rank may send a different length).
    fn all_gather(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>>;

    /// Replaces `values` with the element-wise sum of every rank's `values`, added in rank
    /// order starting from 0, so every rank ends with the same bits. All ranks pass the same
    /// length.
    fn sum_f32(&mut self, values: &mut [f32]) -> Result<()>;

    /// Seconds spent in [`ProcessGroup::sum_f32`] so far, by every handle on the group.
    fn exchange_secs(&self) -> f64;

    /// Another handle on the same group (the reducer and the executor each hold one).
    fn clone_box(&self) -> Box<dyn ProcessGroup>;
}

/// One process alone: every exchange returns its input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Solo;

impl ProcessGroup for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_gather(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![bytes.to_vec()])
    }

    fn sum_f32(&mut self, _values: &mut [f32]) -> Result<()> {
        Ok(())
    }

    fn exchange_secs(&self) -> f64 {
        0.0
    }

    fn clone_box(&self) -> Box<dyn ProcessGroup> {
        Box::new(Solo)
    }
}

/// The reduction across processes behind the [`GradientReducer`] seam: this process's
/// replicas summed on the host as in one process ([`reduce_into`]), then the processes' sums
/// added in rank order by the group.
pub(crate) struct GroupReducer {
    group: Box<dyn ProcessGroup>,
}

impl GradientReducer for GroupReducer {
    fn reduce(&mut self, parts: &[&[f32]], out: &mut [f32]) -> Result<()> {
        match parts {
            // One replica per process, the common case: a copy, not a parallel sum. (It keeps
            // a -0.0 that `0.0 + x` would make +0.0; the sum across processes, which starts
            // from 0.0, makes it +0.0 on every rank all the same.)
            [one] if one.len() == out.len() => out.copy_from_slice(one),
            _ => reduce_into(out, parts)?,
        }
        self.group.sum_f32(out)
    }
}

/// This process's replicas as a slice of every process's replicas, and the group they share.
pub(crate) struct Shard {
    group: Box<dyn ProcessGroup>,
    /// Global index of this process's first replica.
    first: usize,
    /// This process's replicas.
    local: usize,
    /// Relative speed of every replica of every process, in global order.
    weights: Vec<f64>,
}

/// What a rank sends when it joins: a leading 1 then its replicas' weights (f64, little
/// endian), or a leading 0 then why it could not start (UTF-8).
fn join_message(local: &std::result::Result<Vec<f64>, String>) -> Vec<u8> {
    match local {
        Ok(weights) => std::iter::once(1u8).chain(weights.iter().flat_map(|w| w.to_le_bytes())).collect(),
        Err(reason) => std::iter::once(0u8).chain(reason.bytes()).collect(),
    }
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
}

fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
}

/// FNV-1a over the bits of `params`: equal fingerprints on two ranks mean (but for a 2^-64
/// chance) bit-identical weights.
pub(crate) fn fingerprint(params: &[f32]) -> u64 {
    params
        .iter()
        .flat_map(|p| p.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl Shard {
    /// Every replica in this process: the one-process data parallel of [`super::Mirrored`].
    pub fn solo(weights: Vec<f64>) -> Shard {
        Shard { group: Box::new(Solo), first: 0, local: weights.len(), weights }
    }

    /// Joins `group` with this process's replica weights, or the reason it could not open
    /// its replicas. Every rank learns every rank's weights (so the split is the same
    /// everywhere) or, if any rank failed, every rank returns an error naming the first that
    /// did, with its reason.
    pub fn join(
        mut group: Box<dyn ProcessGroup>,
        local: std::result::Result<Vec<f64>, String>,
    ) -> Result<Shard> {
        let rank = group.rank();
        let all = group.all_gather(&join_message(&local))?;
        if let Some((peer, msg)) = all.iter().enumerate().find(|(_, m)| m.first() != Some(&1)) {
            let why = String::from_utf8_lossy(msg.get(1..).unwrap_or_default());
            let reason = if peer == rank {
                format!("could not open its replicas: {why}")
            } else {
                format!("rank {peer} could not open its replicas ({why}); no rank trains")
            };
            return Err(Error::Distributed { rank, peer: Some(peer), reason });
        }
        let per_rank: Vec<Vec<f64>> = all.iter().map(|m| f64s(&m[1..])).collect();
        if let Some(peer) = per_rank.iter().position(|w| w.is_empty()) {
            let reason = format!("rank {peer} has no replicas");
            return Err(Error::Distributed { rank, peer: Some(peer), reason });
        }
        let first = per_rank[..rank].iter().map(Vec::len).sum();
        let local = per_rank[rank].len();
        let weights: Vec<f64> = per_rank.into_iter().flatten().collect();
        split_rows(1, &weights)?;
        Ok(Shard { group, first, local, weights })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.group.rank()
    }

    /// Whether more than one process takes part.
    pub fn is_distributed(&self) -> bool {
        self.group.size() > 1
    }

    /// Replaces the weights of a one-process shard (`weights.len()` = its replicas).
    pub fn set_solo_weights(&mut self, weights: Vec<f64>) -> Result<()> {
        split_rows(1, &weights)?;
        if self.is_distributed() || weights.len() != self.local {
            return Err(Error::Config(format!("{} weights for {} replicas", weights.len(), self.local)));
        }
        self.weights = weights;
        Ok(())
    }

    /// `(start within the batch, rows)` of each of this process's replicas when a global
    /// batch of `rows` rows is split in proportion to the weights.
    pub fn local_shares(&self, rows: usize) -> Result<Vec<(usize, usize)>> {
        self.slice(split_rows(rows, &self.weights)?)
    }

    /// The same for `rows` split equally over every replica (validation rows).
    pub fn local_even_shares(&self, rows: usize) -> Result<Vec<(usize, usize)>> {
        self.slice(split_rows(rows, &vec![1.0; self.weights.len()])?)
    }

    fn slice(&self, shares: Vec<usize>) -> Result<Vec<(usize, usize)>> {
        let offs = offsets(&shares);
        Ok((self.first..self.first + self.local).map(|g| (offs[g], shares[g])).collect())
    }

    /// The gradient reducer for this shard (in a group of one, its exchange returns the
    /// host sum as it is).
    pub fn reducer(&self) -> Box<dyn GradientReducer> {
        Box::new(GroupReducer { group: self.group.clone_box() })
    }

    /// Seconds spent exchanging gradients with the other processes so far.
    pub fn exchange_secs(&self) -> f64 {
        self.group.exchange_secs()
    }

    /// Adds every rank's `sums` in rank order, so every rank ends with the same bits (and
    /// one process's are left as they are).
    pub fn combine(&mut self, sums: &mut [PassSums]) -> Result<()> {
        if !self.is_distributed() {
            return Ok(());
        }
        // Per pass: loss, correct, rows, the task's length, then its sums (a rank with no
        // rows in a pass may send none: it adds zeros).
        let mut mine = Vec::new();
        for s in sums.iter() {
            mine.extend([s.loss, s.correct, s.rows as f64, s.task.len() as f64]);
            mine.extend(&s.task);
        }
        let mine: Vec<u8> = mine.into_iter().flat_map(f64::to_le_bytes).collect();
        let all = self.group.all_gather(&mine)?;
        let mut total = vec![PassSums::default(); sums.len()];
        for (peer, bytes) in all.iter().enumerate() {
            let bad = |why: String| Error::Distributed { rank: self.rank(), peer: Some(peer), reason: why };
            let mut values = f64s(bytes).into_iter();
            for (p, t) in total.iter_mut().enumerate() {
                let head: Vec<f64> = values.by_ref().take(4).collect();
                let [loss, correct, rows, len] = head[..] else {
                    return Err(bad(format!("rank {peer} sent {} passes' sums, {} expected", p, sums.len())));
                };
                let task: Vec<f64> = values.by_ref().take(len as usize).collect();
                if task.len() != len as usize
                    || !(t.task.is_empty() || task.is_empty() || task.len() == t.task.len())
                {
                    return Err(bad(format!(
                        "rank {peer} sent {} task sums for pass {p}, {} expected",
                        task.len(),
                        t.task.len()
                    )));
                }
                t.add(&PassSums { loss, correct, rows: rows as usize, task });
            }
            if values.next().is_some() {
                return Err(bad(format!("rank {peer} sent more sums than {} passes'", sums.len())));
            }
        }
        sums.clone_from_slice(&total);
        Ok(())
    }

    /// Checks that every rank is about to take step `step + 1` from bit-identical `params`:
    /// they must be, or the ranks train different models. Fails on every rank, naming the
    /// first that differs from rank 0.
    pub fn check_agreement(&mut self, step: u64, params: &[f32]) -> Result<()> {
        if !self.is_distributed() {
            return Ok(());
        }
        let mine: Vec<u8> = [step, fingerprint(params)].iter().flat_map(|v| v.to_le_bytes()).collect();
        let all: Vec<Vec<u64>> = self.group.all_gather(&mine)?.iter().map(|b| u64s(b)).collect();
        let Some(peer) = all.iter().position(|v| v != &all[0]) else { return Ok(()) };
        let (theirs, ours) = (&all[peer], &all[0]);
        let reason = if theirs.first() != ours.first() {
            format!(
                "rank {peer} is at step {}, rank 0 at step {}: every rank must start from the same \
                 checkpoint (a shared folder, or rank 0's copied to every host)",
                theirs.first().unwrap_or(&0),
                ours.first().unwrap_or(&0)
            )
        } else {
            format!(
                "rank {peer}'s weights differ from rank 0's at step {}: the ranks no longer train \
                 one model (a bug, or a rank resumed from another checkpoint)",
                step
            )
        };
        Err(Error::Distributed { rank: self.rank(), peer: Some(peer), reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solo_shares_are_the_one_process_split() {
        let shard = Shard::solo(vec![1.0, 1.0, 1.0]);
        assert_eq!(shard.local_shares(7).unwrap(), vec![(0, 3), (3, 2), (5, 2)], "7 rows over 3");
        assert_eq!(shard.local_even_shares(2).unwrap(), vec![(0, 1), (1, 1), (2, 0)], "2 rows over 3");
    }

    #[test]
    fn a_shard_is_its_slice_of_the_global_split() {
        // Rank 1 of a group whose ranks hold 1, 2 and 1 replicas: global replicas 1 and 2.
        let shard = Shard { group: Box::new(Solo), first: 1, local: 2, weights: vec![1.0; 4] };
        assert_eq!(shard.local_shares(10).unwrap(), vec![(3, 3), (6, 2)], "10 rows: 3, 3, 2, 2");
        assert_eq!(shard.local_shares(1).unwrap(), vec![(1, 0), (1, 0)], "a one-row tail goes to replica 0");
    }

    #[test]
    fn join_messages_round_trip() {
        let ok = join_message(&Ok(vec![1.0, 3.5]));
        assert_eq!(ok[0], 1);
        assert_eq!(f64s(&ok[1..]), vec![1.0, 3.5]);
        let err = join_message(&Err("no adapter".into()));
        assert_eq!((err[0], &err[1..]), (0, "no adapter".as_bytes()));
    }

    #[test]
    fn fingerprint_sees_every_bit() {
        let a = vec![0.5f32, -1.0, 3.25];
        let mut b = a.clone();
        b[2] = f32::from_bits(b[2].to_bits() ^ 1);
        assert_ne!(fingerprint(&a), fingerprint(&b), "one ulp apart");
        assert_ne!(fingerprint(&[0.0]), fingerprint(&[-0.0]), "the sign of zero");
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    }
}
