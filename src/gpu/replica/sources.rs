//! The rows a replica's passes read: data sets resident on its device and an index order
//! over each, registered once and named by a [`SourceId`].

use std::sync::Arc;

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
    /// is the same dataset). Returns the training and validation source ids.
    pub fn load_sources(
        &mut self,
        data: &Dataset,
        train_idx: &[u32],
        val: Option<(&Dataset, &[u32])>,
    ) -> Result<(SourceId, Option<SourceId>)> {
        self.truncate_sources(0);
        let gpu = self.gpu.clone();
        let resident = Arc::new(DeviceDataset::upload(&gpu, data)?);
        let train =
            self.add_source(Arc::clone(&resident), DeviceIndices::upload(&gpu, train_idx, data.len())?)?;
        let val = match val {
            Some((vdata, idx)) if !idx.is_empty() => {
                let vres = if std::ptr::eq(vdata, data) {
                    resident
                } else {
                    Arc::new(DeviceDataset::upload(&gpu, vdata)?)
                };
                Some(self.add_source(vres, DeviceIndices::upload(&gpu, idx, vdata.len())?)?)
            }
            _ => None,
        };
        Ok((train, val))
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

    /// Loss and correct sums of the current weights over all of `data`, uploaded for this
    /// call and released after it.
    pub(crate) fn evaluate_dataset(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
        let gpu = self.gpu.clone();
        let keep = self.source_count();
        let resident = Arc::new(DeviceDataset::upload(&gpu, data)?);
        let all: Vec<u32> = (0..data.len() as u32).collect();
        let id = self.add_source(resident, DeviceIndices::upload(&gpu, &all, data.len())?)?;
        self.clear_metrics();
        let result = self.submit_eval(id, eval_batch).and_then(|()| self.read_metrics());
        // The evaluation set lives on the device for this call only.
        self.truncate_sources(keep);
        Ok(PassSums { rows: data.len(), ..result?.eval })
    }
}
