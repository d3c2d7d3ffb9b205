//! The two executors behind [`crate::Trainer`]: the GPU (one replica per device, data
//! resident) and the CPU reference. Both run one epoch at a time and return the epoch's
//! summed loss and correct counts; the trainer does the rest (shuffles, early stopping,
//! history) once for both.

use std::sync::Arc;

use crate::cpu::CpuMlp;
use crate::data::Dataset;
use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::kernels::pixel_value;
use crate::model::MlpSpec;
use crate::optim::Optimizer;
use crate::parallel::Mirrored;
use crate::train::device_data::{DeviceDataset, DeviceIndices};
use crate::train::replica::{Replica, SourceId};

/// Sums over one pass: `(loss sum, correct, rows)`.
pub(crate) type PassSums = (f64, f64, usize);

/// Sums of one epoch.
pub(crate) struct EpochSums {
    pub train: PassSums,
    pub val: Option<PassSums>,
    pub steps: usize,
}

/// Where validation rows come from.
pub(crate) enum ValSource<'a> {
    None,
    /// Indices into the training dataset.
    Split(&'a [u32]),
    Data(&'a Dataset),
}

impl<'a> ValSource<'a> {
    /// The validation rows as (dataset, indices); `all` holds the indices of a whole
    /// explicit validation set.
    pub fn rows<'b>(&'b self, train: &'b Dataset, all: &'b mut Vec<u32>) -> Option<(&'b Dataset, &'b [u32])> {
        match self {
            ValSource::None => None,
            ValSource::Split(idx) => Some((train, idx)),
            ValSource::Data(v) => {
                *all = (0..v.len() as u32).collect();
                Some((v, all.as_slice()))
            }
        }
    }
}

pub(crate) enum Engine {
    Gpu(Box<GpuEngine>),
    Mirrored(Box<MirroredEngine>),
    Cpu(Box<CpuEngine>),
}

/// One replica on one device with the training (and validation) data resident.
pub(crate) struct GpuEngine {
    pub replica: Replica,
    train: Option<SourceId>,
    val: Option<SourceId>,
}

impl GpuEngine {
    pub fn new(
        gpu: Gpu,
        spec: &MlpSpec,
        optimizer: Optimizer,
        params: &[f32],
        max_rows: usize,
    ) -> Result<Self> {
        Ok(GpuEngine {
            replica: Replica::new(gpu, spec, optimizer, params, max_rows)?,
            train: None,
            val: None,
        })
    }

    /// Uploads the training rows `train_idx` of `data` and the validation rows, once.
    pub fn prepare(&mut self, data: &Dataset, train_idx: &[u32], val: &ValSource<'_>) -> Result<()> {
        let mut all = Vec::new();
        let (train, val) = self.replica.load_sources(data, train_idx, val.rows(data, &mut all))?;
        self.train = Some(train);
        self.val = val;
        Ok(())
    }

    pub fn run_epoch(
        &mut self,
        order: &[u32],
        batch: usize,
        first_step: u64,
        eval_batch: usize,
        hook: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<EpochSums> {
        let train = self.train.ok_or_else(|| Error::Config("fit has not uploaded its data".into()))?;
        let r = &mut self.replica;
        r.set_order(train, order)?;
        r.clear_metrics();
        let steps = r.submit_epoch(train, batch, first_step, hook)?;
        if let Some(val) = self.val {
            r.submit_eval(val, eval_batch)?;
        }
        let m = r.read_metrics()?;
        let val = self.val.map(|v| (m[2] as f64, m[3] as f64, r.source_len(v)));
        Ok(EpochSums { train: (m[0] as f64, m[1] as f64, order.len()), val, steps })
    }

    /// Loss and correct sums over `data` (uploaded for this call).
    pub fn evaluate(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
        evaluate_on(&mut self.replica, data, eval_batch)
    }
}

/// Several replicas training data parallel (see [`crate::parallel`]).
pub(crate) struct MirroredEngine {
    pub inner: Mirrored,
}

impl MirroredEngine {
    pub fn prepare(&mut self, data: &Dataset, train_idx: &[u32], val: &ValSource<'_>) -> Result<()> {
        let mut all = Vec::new();
        self.inner.prepare(data, train_idx, val.rows(data, &mut all))
    }

    pub fn run_epoch(
        &mut self,
        order: &[u32],
        batch: usize,
        first_step: u64,
        eval_batch: usize,
        val_rows: Option<usize>,
        hook: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<EpochSums> {
        let (m, steps) = self.inner.run_epoch(order, batch, first_step, eval_batch, hook)?;
        Ok(EpochSums { train: (m[0], m[1], order.len()), val: val_rows.map(|n| (m[2], m[3], n)), steps })
    }

    /// Evaluation runs on the first replica (all hold the same weights).
    pub fn evaluate(&mut self, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
        let replica = self.inner.replicas.first_mut().ok_or_else(|| Error::Config("no replicas".into()))?;
        evaluate_on(replica, data, eval_batch)
    }
}

/// Loss and correct sums over `data`, uploaded to `replica` for this call.
fn evaluate_on(replica: &mut Replica, data: &Dataset, eval_batch: usize) -> Result<PassSums> {
    let gpu = replica.gpu.clone();
    let keep = replica.source_count();
    let resident = Arc::new(DeviceDataset::upload(&gpu, data)?);
    let all: Vec<u32> = (0..data.len() as u32).collect();
    let id = replica.add_source(resident, DeviceIndices::upload(&gpu, &all, data.len())?)?;
    replica.clear_metrics();
    let result = replica.submit_eval(id, eval_batch).and_then(|()| replica.read_metrics());
    // The evaluation set lives on the device for this call only.
    replica.truncate_sources(keep);
    let m = result?;
    Ok((m[2] as f64, m[3] as f64, data.len()))
}

/// The CPU reference backend as an executor.
pub(crate) struct CpuEngine {
    pub mlp: CpuMlp,
    /// restore_best_weights' snapshot.
    pub best: Vec<f32>,
    /// Reused batch buffers: no allocation per step.
    x: Vec<f32>,
    y: Vec<u8>,
}

impl CpuEngine {
    pub fn new(spec: &MlpSpec, optimizer: Optimizer, params: &[f32]) -> Result<Self> {
        Ok(CpuEngine {
            mlp: CpuMlp::new(spec.clone(), params.to_vec(), optimizer)?,
            best: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
        })
    }

    /// Gathers rows `idx` of `data` into the batch buffers: pixel / 255, computed as the
    /// GPU's table was ([`pixel_value`], so the same bits), in a loop the compiler
    /// vectorizes (a table lookup per pixel was a fifth of an epoch's time).
    fn gather(&mut self, data: &Dataset, idx: &[u32]) {
        let f = data.features;
        self.x.resize(idx.len() * f, 0.0);
        self.y.clear();
        for (r, &i) in idx.iter().enumerate() {
            if let Some(&next) = idx.get(r + 1) {
                prefetch_row(&data.pixels[next as usize * f..(next as usize + 1) * f]);
            }
            let row = &data.pixels[i as usize * f..(i as usize + 1) * f];
            for (dst, &p) in self.x[r * f..(r + 1) * f].iter_mut().zip(row) {
                *dst = pixel_value(p);
            }
            self.y.push(data.labels[i as usize]);
        }
    }

    pub fn run_epoch(
        &mut self,
        data: &Dataset,
        order: &[u32],
        batch: usize,
        val: &ValSource<'_>,
        hook: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<EpochSums> {
        let (mut loss, mut correct) = (0.0f64, 0.0f64);
        let mut steps = 0;
        for chunk in order.chunks(batch) {
            self.gather(data, chunk);
            let (l, c) = self.mlp.train_step(&self.x, &self.y)?;
            loss += l as f64;
            correct += c as f64;
            steps += 1;
            if steps % 16 == 0 {
                hook(steps)?;
            }
        }
        let val = match val {
            ValSource::None => None,
            ValSource::Split(idx) => Some(self.eval_rows(data, idx)?),
            ValSource::Data(v) => Some(self.evaluate(v)?),
        };
        Ok(EpochSums { train: (loss, correct, order.len()), val, steps })
    }

    fn eval_rows(&mut self, data: &Dataset, idx: &[u32]) -> Result<PassSums> {
        let (mut loss, mut correct) = (0.0f64, 0.0f64);
        for chunk in idx.chunks(1000) {
            self.gather(data, chunk);
            let (l, c) = self.mlp.evaluate(&self.x, &self.y)?;
            loss += l as f64;
            correct += c as f64;
        }
        Ok((loss, correct, idx.len()))
    }

    pub fn evaluate(&mut self, data: &Dataset) -> Result<PassSums> {
        let all: Vec<u32> = (0..data.len() as u32).collect();
        self.eval_rows(data, &all)
    }

    pub fn snapshot_best(&mut self) {
        self.best.clear();
        self.best.extend_from_slice(self.mlp.params());
    }

    pub fn restore_best(&mut self) -> Result<()> {
        let best = std::mem::take(&mut self.best);
        self.mlp.set_params(&best)?;
        self.best = best;
        Ok(())
    }
}

/// Asks the CPU to start loading `row` into cache: batch rows are scattered over the data set,
/// and the conversion loop otherwise waits on memory at the start of every row.
#[inline]
fn prefetch_row(row: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in row.chunks(64) {
        // SAFETY: prefetching is a hint with no architectural effect; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}
