//! Data sets too large for one storage binding (or, when their allocation fails, for the
//! device's memory) pass through the device in chunks instead of living on it.
//!
//! A [`Stream`] is two chunk slots, each a source over a chunk-sized [`DeviceDataset`] whose
//! index order is the identity. A pass cuts its rows (the epoch's shuffled order, or the
//! validation rows) into chunks of whole launches; the host gathers chunk c+1's rows on a
//! helper thread while chunk c's launches are encoded and run, then queues them into the
//! other slot. Every launch reads the same rows in the same order through the same recorded
//! kernels as it would from the resident set, so a streamed pass gives the resident pass's
//! bits.
//!
//! Order: a queued write lands after every earlier submission and before the next, so a slot
//! is never rewritten under a launch that reads it. The one wait per chunk, for the chunk
//! before last (the one that read the slot about to be rewritten), bounds memory, not order:
//! wgpu holds each queued write in a staging allocation until its submission completes, and
//! that wait keeps at most two chunks staged. The device meanwhile runs the chunk just
//! submitted, so it is rarely a wait at all.

use std::sync::Arc;

use super::submit::{ChunkHook, InFlight};
use super::{PassKind, Replica, SourceId};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};
use crate::gpu::kernels::GatherStep;

/// The largest buffer of a chunk slot, in bytes (less where the device's binding limit is
/// less). Large enough that a chunk's upload is one big copy amortised over many steps, small
/// enough that two slots and two staged chunks stay a modest share of any device's memory.
pub(crate) const STREAM_CHUNK_BYTES: u64 = 64 << 20;

/// Two chunk slots through which a data set too large to be resident is streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    slots: [SourceId; 2],
    /// Rows each slot holds.
    capacity: usize,
}

/// The rows a pass reads: resident on the device with an index order over them, or streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    Resident(SourceId),
    Streamed(Stream),
}

impl Replica {
    /// `data` uploaded whole when each of its buffers fits one binding and the allocation
    /// succeeds; `None` when it must be streamed (or when a test forces streaming).
    pub(super) fn try_resident(&self, data: &Dataset) -> Result<Option<Arc<DeviceDataset>>> {
        if self.stream_chunk_bytes.is_some() || !DeviceDataset::fits(&self.gpu, data) {
            return Ok(None);
        }
        match DeviceDataset::upload(&self.gpu, data) {
            Ok(resident) => Ok(Some(Arc::new(resident))),
            // The device has not the memory for the whole set at once: stream it.
            Err(Error::OutOfMemory { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Rows `idx` of `data` for passes: an index order over `resident` when there is one,
    /// else a stream sized for `idx.len()` rows.
    pub(super) fn rows_over(
        &mut self,
        resident: Option<&Arc<DeviceDataset>>,
        data: &Dataset,
        idx: &[u32],
    ) -> Result<Rows> {
        Ok(match resident {
            Some(set) => {
                let order = DeviceIndices::upload(&self.gpu, idx, data.len())?;
                Rows::Resident(self.add_source(Arc::clone(set), order)?)
            }
            None => Rows::Streamed(self.add_stream(data, idx.len())?),
        })
    }

    /// Two chunk slots laid out as `data`, each of as many rows as fit the chunk budget in its
    /// widest buffer, but at least one launch (the workspace's rows) and at most `visited`.
    fn add_stream(&mut self, data: &Dataset, visited: usize) -> Result<Stream> {
        let limits = self.gpu.device.limits();
        let budget = self
            .stream_chunk_bytes
            .unwrap_or(STREAM_CHUNK_BYTES)
            .min(limits.max_storage_buffer_binding_size)
            .min(limits.max_buffer_size);
        let widest = DeviceDataset::row_bytes(data).into_iter().max().unwrap_or(4);
        let capacity = slot_rows(budget, widest, self.work.rows, visited);
        let identity: Vec<u32> = (0..capacity as u32).collect();
        let mut slots = [SourceId(0); 2];
        for slot in &mut slots {
            let set = Arc::new(DeviceDataset::with_capacity(&self.gpu, data, capacity)?);
            *slot = self.add_source(set, DeviceIndices::upload(&self.gpu, &identity, capacity)?)?;
        }
        Ok(Stream { slots, capacity })
    }

    /// One epoch of training over `order` (rows of `data`) through `stream`, in batches of
    /// `batch` rows, the last partial: [`Replica::submit_epoch`]'s steps, streamed. No wait
    /// but the one per chunk the module's header explains. Returns the steps taken.
    pub(crate) fn submit_epoch_streamed(
        &mut self,
        stream: Stream,
        data: &Dataset,
        order: &[u32],
        batch: usize,
        first_step: u64,
        hook: ChunkHook<'_>,
    ) -> Result<usize> {
        if batch == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        self.write_schedule(first_step, order.len().div_ceil(batch))?;
        self.submit_streamed(stream, data, order, batch, Some(first_step), hook)
    }

    /// A forward pass over rows `rows` of `data` through `stream` in launches of `chunk` rows:
    /// [`Replica::submit_eval`], streamed.
    pub(crate) fn submit_eval_streamed(
        &mut self,
        stream: Stream,
        data: &Dataset,
        rows: &[u32],
        chunk: usize,
    ) -> Result<()> {
        let chunk = chunk.min(self.work.rows).max(1);
        self.submit_streamed(stream, data, rows, chunk, None, &mut |_| Ok(())).map(|_| ())
    }

    /// Launches of `launch` rows over `rows` of `data`, chunk by chunk through the two slots:
    /// training steps after `first_step` optimizer steps (they read the optimizer schedule
    /// from its start, and draw dropout masks for their step), or with `None` evaluation.
    /// Returns the launches.
    fn submit_streamed(
        &mut self,
        stream: Stream,
        data: &Dataset,
        rows: &[u32],
        launch: usize,
        first_step: Option<u64>,
        hook: ChunkHook<'_>,
    ) -> Result<usize> {
        let kind = if first_step.is_some() { PassKind::Train } else { PassKind::Eval };
        if let Some(bad) = rows.iter().find(|&&i| i as usize >= data.len()) {
            return Err(Error::Data(format!("index {bad} is past the dataset's {} rows", data.len())));
        }
        if rows.is_empty() || (stream.capacity < launch && rows.len() > stream.capacity) {
            return Err(Error::Shape(format!(
                "{} rows in launches of {launch} through chunks of {} rows",
                rows.len(),
                stream.capacity
            )));
        }
        let pieces: Vec<&[u32]> = rows.chunks(chunk_rows(stream.capacity, launch)).collect();
        let mut flight = InFlight::default();
        let mut last_read: [Option<wgpu::SubmissionIndex>; 2] = [None, None];
        self.write_chunk(stream.slots[0], &data.subset(pieces[0])?)?;
        let mut first = 0;
        for (c, piece) in pieces.iter().enumerate() {
            let slot = c % 2;
            let launches = self.chunk_launches(stream.slots[slot], piece.len(), launch, first, first_step)?;
            let schedule = (kind == PassKind::Train).then_some(first);
            let (sent, gathered) = gather_beside(data, pieces.get(c + 1).copied(), || {
                self.encode_launches(&launches, schedule, &mut flight, &mut *hook)
            });
            sent?;
            last_read[slot] = flight.last.clone();
            if let Some(gathered) = gathered {
                let chunk = gathered?;
                if let Some(index) = last_read[1 - slot].take() {
                    self.gpu.wait_for(index)?;
                }
                self.write_chunk(stream.slots[1 - slot], &chunk)?;
            }
            first += launches.len();
        }
        Ok(first)
    }

    /// The launches `(plan, index into its starts)` of a chunk of `rows` rows in `slot`:
    /// whole launches of `launch` rows, then a partial one for the rest (the pass's last
    /// chunk only). Launch `first + s` of the pass trains optimizer step
    /// `first_step + first + s + 1`, whose dropout masks it draws. Each call writes its
    /// chunk's steps into the slot's plans: queued writes, so the launches of the slot's
    /// previous chunk, already submitted, read the steps they were recorded with.
    fn chunk_launches(
        &mut self,
        slot: SourceId,
        rows: usize,
        launch: usize,
        first: usize,
        first_step: Option<u64>,
    ) -> Result<Vec<(usize, usize)>> {
        let kind = if first_step.is_some() { PassKind::Train } else { PassKind::Eval };
        let t = |s: usize| first_step.map_or(0, |f| f + (first + s) as u64 + 1);
        let full = rows / launch;
        let mut launches = Vec::new();
        if full > 0 {
            let starts: Vec<GatherStep> = (0..full).map(|s| GatherStep::new(s * launch, t(s), 0)).collect();
            let p = self.plan(slot, launch, kind, launch, &starts)?;
            launches.extend((0..full).map(|s| (p, s)));
        }
        let tail = rows % launch;
        if tail > 0 {
            let p = self.plan(slot, tail, kind, tail, &[GatherStep::new(full * launch, t(full), 0)])?;
            launches.push((p, 0));
        }
        Ok(launches)
    }

    /// Queues `chunk`'s rows into a slot.
    fn write_chunk(&self, slot: SourceId, chunk: &Dataset) -> Result<()> {
        self.sources[slot.0].data.write_rows(&self.gpu, chunk)
    }
}

/// Rows of a chunk slot: as many as `budget` bytes hold in the slot's widest buffer
/// (`widest` bytes a row), but at least `launch_rows` (one launch of any pass) and at most
/// the `visited` rows of the pass, which need no more.
fn slot_rows(budget: u64, widest: u64, launch_rows: usize, visited: usize) -> usize {
    let fit = usize::try_from(budget / widest.max(1)).unwrap_or(usize::MAX);
    fit.max(launch_rows).min(visited).max(1)
}

/// Rows of each chunk of a pass in launches of `launch` rows through slots of `capacity`:
/// whole launches, so that every launch reads the rows it reads when resident; all of a
/// pass shorter than one launch.
fn chunk_rows(capacity: usize, launch: usize) -> usize {
    if capacity >= launch {
        capacity / launch * launch
    } else {
        capacity
    }
}

/// Runs `work` while a helper thread gathers rows `next` of `data` (in that order) for the
/// next chunk; without a thread to be had, gathers them after `work`.
fn gather_beside<T>(
    data: &Dataset,
    next: Option<&[u32]>,
    work: impl FnOnce() -> T,
) -> (T, Option<Result<Dataset>>) {
    let Some(next) = next else { return (work(), None) };
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("wgtrain chunk gather".into())
            .spawn_scoped(scope, || data.subset(next));
        let done = work();
        let gathered = match helper {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(Error::Data("the thread gathering a chunk of rows panicked".into()))),
            Err(_) => data.subset(next),
        };
        (done, Some(gathered))
    })
}

#[cfg(test)]
mod tests {
    use super::{chunk_rows, slot_rows};

    #[test]
    fn slots_and_chunks_are_sized_in_whole_launches() {
        // (budget, widest, launch rows, visited) -> slot rows, and why.
        let slots: [(u64, u64, usize, usize, usize, &str); 5] = [
            (64 << 20, 4400, 1000, 33_000, 15_252, "the budget over the widest buffer's row"),
            (1000, 400, 24, 33_000, 24, "never below one launch of the workspace's rows"),
            (64 << 20, 4400, 1000, 500, 500, "never above the rows the pass visits"),
            (0, 0, 0, 0, 1, "degenerate inputs still give one row"),
            (u64::MAX, 1, 1, usize::MAX, usize::MAX, "a huge budget saturates"),
        ];
        for (budget, widest, launch, visited, want, why) in slots {
            assert_eq!(slot_rows(budget, widest, launch, visited), want, "{why}");
        }
        // (capacity, launch) -> chunk rows, and why.
        let chunks: [(usize, usize, usize, &str); 4] = [
            (15_252, 128, 15_232, "119 whole batches of 128"),
            (40, 18, 36, "two whole batches, not 40 rows"),
            (24, 24, 24, "exactly one launch"),
            (10, 24, 10, "a pass shorter than a launch is one partial launch"),
        ];
        for (capacity, launch, want, why) in chunks {
            assert_eq!(chunk_rows(capacity, launch), want, "{why}");
        }
    }
}
