//! Streamed passes against resident ones on the same device: forced into chunks of a few
//! launches, two epochs of training with validation and an evaluation give the resident runs'
//! bits, weights and every sum, for f32 rows, u8 pixels and regression targets.

use super::stream::STREAM_CHUNK_BYTES;
use crate::data::{Dataset, Targets};
use crate::exec::{EpochPlan, Executor, ValSource};
use crate::gpu::device_data::DeviceDataset;
use crate::gpu::executor::DeviceExecutor;
use crate::gpu::kernels::tests::open_gpus;
use crate::gpu::Gpu;
use crate::spec::{Activation, Init, Loss, LrSchedule, Network, Optimizer};

/// A fixed LCG: the test's only source of numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// Fisher-Yates over `v`.
    fn shuffle(&mut self, v: &mut [u32]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.next() as usize % (i + 1));
        }
    }
}

fn values(rows: usize, width: usize, targets: impl FnOnce(&[f32]) -> Targets) -> Dataset {
    let mut rng = Lcg(17);
    let x: Vec<f32> = (0..rows * width).map(|_| (rng.next() % 2001) as f32 / 1000.0 - 1.0).collect();
    let t = targets(&x);
    Dataset::from_values(x, width, t).expect("valid table")
}

/// What a run leaves: weight bits, per epoch the bits of every training and validation sum,
/// and the bits of a final evaluation's sums.
type Outcome = (Vec<u32>, Vec<Vec<u64>>, Vec<u64>);

/// How a case trains: batch rows, validation rows a data set of their own (else a split of
/// the training set), and the bytes of a chunk when streamed.
#[derive(Clone, Copy)]
struct Setup {
    batch: usize,
    separate_val: bool,
    chunk_bytes: Option<u64>,
}

/// Two epochs over `data` (the first 4/5 of a fixed shuffle train, the rest validate) under a
/// step-decay schedule, and an evaluation of all of it; streamed in chunks of `chunk_bytes`
/// when given.
fn run(gpu: &Gpu, data: &Dataset, spec: &Network, loss: Loss, setup: Setup) -> Outcome {
    let Setup { batch, separate_val, chunk_bytes } = setup;
    let eval_batch = 24;
    let params = spec.layout().init(Init::He, 3);
    let mut ex =
        DeviceExecutor::new(gpu.clone(), spec, Optimizer::adam(1e-3), loss, &params, batch.max(eval_batch))
            .expect("executor");
    if let Some(bytes) = chunk_bytes {
        ex.replica_mut().force_streaming(bytes);
    }
    // A rate that changes every 3 steps: a streamed step that read another step's scalars
    // (an index off by a chunk) would move the weights differently.
    ex.set_learning_rate(1e-3, LrSchedule::StepDecay { step_size: 3, gamma: 0.7 }).expect("schedule");
    let mut rng = Lcg(5);
    let mut all: Vec<u32> = (0..data.len() as u32).collect();
    rng.shuffle(&mut all);
    let (train, val) = all.split_at(data.len() * 4 / 5);
    let val_set = data.subset(val).expect("validation rows");
    let val = if separate_val { ValSource::Data(&val_set) } else { ValSource::Split(val) };
    ex.prepare(data, train, &val).expect("prepare");
    // Resident: a training and a validation source; streamed: two slots for each.
    let sources = ex.replica_mut().source_count();
    assert_eq!(sources, if chunk_bytes.is_some() { 4 } else { 2 }, "streamed: {chunk_bytes:?}");
    let mut epochs = Vec::new();
    let mut step = 0;
    for _ in 0..2 {
        let mut order = train.to_vec();
        rng.shuffle(&mut order);
        let plan = EpochPlan { order: &order, batch, first_step: step, eval_batch };
        let sums = ex.run_epoch(data, &val, &plan, &mut |_| Ok(())).expect("epoch");
        step += sums.steps as u64;
        let v = sums.val.expect("validation ran");
        let mut bits = vec![sums.train.loss.to_bits(), sums.train.correct.to_bits(), v.loss.to_bits()];
        bits.extend(sums.train.task.iter().chain(&v.task).map(|s| s.to_bits()));
        epochs.push(bits);
    }
    let e = ex.evaluate(data, eval_batch).expect("evaluate");
    let mut eval = vec![e.loss.to_bits(), e.correct.to_bits(), e.rows as u64];
    eval.extend(e.task.iter().map(|s| s.to_bits()));
    let weights = ex.parameters().expect("parameters").iter().map(|w| w.to_bits()).collect();
    (weights, epochs, eval)
}

/// Each row: data, network, loss, batch, rows per chunk slot, and why. The slots hold a few
/// launches, so that chunks end mid-epoch, the last chunk is short and ends in a partial batch,
/// and the validation rows take several chunks too. Each row runs with the validation rows as
/// a split of the training set and as a data set of their own.
#[test]
fn streamed_training_gives_the_resident_bits() {
    let gpu = open_gpus(1).remove(0);
    let labels = |width: usize| {
        move |x: &[f32]| Targets::Classes {
            labels: x.chunks(width).map(|r| u32::from(r[0] + r[1] > 0.0) + u32::from(r[2] > 0.5)).collect(),
            classes: 3,
        }
    };
    let pixels = {
        let mut rng = Lcg(9);
        let px: Vec<u8> = (0..260 * 784).map(|_| rng.next() as u8).collect();
        let labels = px.chunks(784).map(|r| r[0] / 86).collect();
        Dataset::new(px, labels, 784, 3).expect("valid images")
    };
    let regression = values(250, 21, |x| Targets::Values {
        values: x.chunks(21).flat_map(|r| [r[0] - r[1], 0.5 * r[2]]).collect(),
        outputs: 2,
    });
    let cases: Vec<(Dataset, Network, Loss, usize, usize, &str)> = vec![
        (
            values(300, 37, labels(37)),
            Network::new(37).dense(19, Activation::Relu).dropout(0.3).dense(3, Activation::Identity),
            Loss::SoftmaxCrossEntropy,
            18,
            40,
            "f32 rows with dropout (each streamed step draws its own step's masks): 240 train in \
             chunks of 36 (two batches of 18), the last 24 (one and a 6-row tail)",
        ),
        (
            pixels,
            Network::classifier(&[784, 33, 3], Activation::Tanh),
            Loss::SoftmaxCrossEntropy,
            20,
            64,
            "u8 pixels, packed in the slots as when resident: 208 train rows, chunks of 60",
        ),
        (
            regression,
            Network::new(21).dense(9, Activation::Relu).dense(2, Activation::Identity),
            Loss::MeanSquaredError,
            16,
            30,
            "regression targets streamed beside their rows: 200 train rows, chunks of 16",
        ),
    ];
    for (data, spec, loss, batch, slot_rows, why) in cases {
        let widest = DeviceDataset::row_bytes(&data).into_iter().max().unwrap_or(4);
        let bytes = widest * slot_rows as u64;
        assert!(bytes < STREAM_CHUNK_BYTES, "{why}: a forced chunk is smaller than the default");
        for separate_val in [false, true] {
            let setup = Setup { batch, separate_val, chunk_bytes: None };
            let resident = run(&gpu, &data, &spec, loss, setup);
            let streamed = run(&gpu, &data, &spec, loss, Setup { chunk_bytes: Some(bytes), ..setup });
            let why = format!("{why}, validation set of its own: {separate_val}");
            assert_eq!(resident.1, streamed.1, "{why}: the epochs' sums differ");
            assert_eq!(resident.2, streamed.2, "{why}: the evaluations differ");
            let differ = resident.0.iter().zip(&streamed.0).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{why}: {differ} of {} weights differ", resident.0.len());
        }
    }
}
