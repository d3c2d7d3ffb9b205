//! The rows a replica's passes read: data sets resident on its device and an index order
//! over each, registered once and named by a [`SourceId`]; or, for a set too large to be
//! resident, a stream of chunks through two slot sources (`stream.rs`). [`Rows`] names either.

use std::sync::Arc;

use super::stream::Rows;
use super::submit::ChunkHook;
use super::Replica;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::exec::PassSums;
use crate::gpu::device_data::{DeviceDataset, DeviceIndices};

/// Which rows a pass reads: a resident dataset and an index order over it.
pub struct Source {
    pub(crate) data: Arc<DeviceDataset>,
    pub(crate) indices: DeviceIndices,
}

/// Handle to a [`Source`] registered with a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceId(pub(super) usize);

impl Replica {
    /// Registers a dataset and an index order over it for later passes.
    pub fn add_source(&mut self, data: Arc<DeviceDataset>, indices: DeviceIndices) -> Result<SourceId> {
        if data.features != self.spec.inputs() {
            return Err(Error::Shape(format!(
                "the data has {} features, the model takes {}",
                data.features,
                self.spec.inputs()
            )));
        }
        self.sources.push(Source { data, indices });
        Ok(SourceId(self.sources.len() - 1))
    }

    /// Replaces every source with the training rows `train_idx` of `data` and, when given,
    /// the validation rows of a validation set (uploaded once, or shared with `data` when it
    /// is the same dataset). A set too large to be resident is streamed instead
    /// (`stream.rs`). Returns the training and validation rows.
    pub(crate) fn load_rows(
        &mut self,
        data: &Dataset,
        train_idx: &[u32],
        val: Option<(&Dataset, &[u32])>,
    ) -> Result<(Rows, Option<Rows>)> {
        self.truncate_sources(0);
        let resident = self.try_resident(data)?;
        let train = self.rows_over(resident.as_ref(), data, train_idx)?;
        let val = match val {
            Some((vdata, idx)) if !idx.is_empty() => {
                let vres = if std::ptr::eq(vdata, data) { resident } else { self.try_resident(vdata)? };
                Some(self.rows_over(vres.as_ref(), vdata, idx)?)
            }
            _ => None,
        };
        Ok((train, val))
    }

    /// [`Replica::load_rows`] for data parallel, whose steps read resident rows only: a set
    /// that would have to be streamed is an [`Error::Config`] saying what to do.
    pub fn load_sources(
        &mut self,
        data: &Dataset,
        train_idx: &[u32],
        val: Option<(&Dataset, &[u32])>,
    ) -> Result<(SourceId, Option<SourceId>)> {
        self.truncate_sources(0);
        let gpu = self.gpu.clone();
        let resident = self.try_resident(data)?.ok_or_else(|| self.not_resident("training"))?;
        let train =
            self.add_source(Arc::clone(&resident), DeviceIndices::upload(&gpu, train_idx, data.len())?)?;
        let val = match val {
            Some((vdata, idx)) if !idx.is_empty() => {
                let vres = if std::ptr::eq(vdata, data) {
                    resident
                } else {
                    self.try_resident(vdata)?.ok_or_else(|| self.not_resident("validation"))?
                };
                Some(self.add_source(vres, DeviceIndices::upload(&gpu, idx, vdata.len())?)?)
            }
            _ => None,
        };
        Ok((train, val))
    }

    fn not_resident(&self, which: &str) -> Error {
        Error::Config(format!(
            "the {which} data does not fit on {} at once (a buffer over its {}-byte storage binding \
             limit, or out of memory); data parallel keeps every replica's rows resident and cannot \
             stream them: train on one device, which streams a data set this large in chunks, or on \
             the CPU",
            self.gpu.report.label(),
            self.gpu.device.limits().max_storage_buffer_binding_size
        ))
    }

    /// Number of sources registered so far.
    pub fn source_count(&self) -> usize {
        self.sources.len()
    }

    /// Forgets every source from `keep` on, with the plans recorded for them, so a dataset
    /// uploaded for one call (an evaluation, a previous `fit`) frees its device memory.
    pub fn truncate_sources(&mut self, keep: usize) {
        self.sources.truncate(keep);
        self.plans.retain(|p| p.source.is_none_or(|s| s.0 < keep));
    }

    /// Number of rows a source visits per pass.
    pub fn source_len(&self, id: SourceId) -> usize {
        self.sources[id.0].indices.len
    }

    /// Replaces a source's visiting order (a new epoch's shuffle).
    pub fn set_order(&self, id: SourceId, order: &[u32]) -> Result<()> {
        let s = &self.sources[id.0];
        if let Some(bad) = order.iter().find(|&&i| i as usize >= s.data.len) {
            return Err(Error::Data(format!("index {bad} is past the dataset's {} images", s.data.len)));
        }
        s.indices.rewrite(&self.gpu, order)
    }

    /// Loss and correct sums of the current weights over all of `data`, uploaded (or
    /// streamed) for this call and released after it.
    pub(crate) fn evaluate_dataset(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
        let keep = self.source_count();
        let all: Vec<u32> = (0..data.len() as u32).collect();
        let result = self.try_resident(data).and_then(|resident| {
            let rows = self.rows_over(resident.as_ref(), data, &all)?;
            self.clear_metrics();
            self.submit_eval_rows(rows, data, &all, eval_batch)?;
            self.read_metrics()
        });
        // The evaluation set lives on the device for this call only.
        self.truncate_sources(keep);
        Ok(PassSums { rows: data.len(), ..result?.eval })
    }

    /// One epoch of training over `order` (rows of `data`) from `rows`, resident or streamed.
    /// Returns the steps taken; no wait but a streamed pass's one per chunk.
    pub(crate) fn submit_train_rows(
        &mut self,
        rows: Rows,
        data: &Dataset,
        order: &[u32],
        batch: usize,
        first_step: u64,
        hook: ChunkHook<'_>,
    ) -> Result<usize> {
        match rows {
            Rows::Resident(id) => {
                self.set_order(id, order)?;
                self.submit_epoch(id, batch, first_step, hook)
            }
            Rows::Streamed(s) => self.submit_epoch_streamed(s, data, order, batch, first_step, hook),
        }
    }

    /// An evaluation over `rows`: resident ones in their uploaded order, streamed ones as
    /// rows `idx` of `data`.
    pub(crate) fn submit_eval_rows(
        &mut self,
        rows: Rows,
        data: &Dataset,
        idx: &[u32],
        chunk: usize,
    ) -> Result<()> {
        match rows {
            Rows::Resident(id) => self.submit_eval(id, chunk),
            Rows::Streamed(s) => self.submit_eval_streamed(s, data, idx, chunk),
        }
    }
}
