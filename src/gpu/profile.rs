//! Measuring what a device does, for benchmarks and for applications that want to know: a
//! matrix product prepared once and run on demand ([`PreparedMatmul`]), and a whole training
//! step with the time of each of its kernel launches ([`PreparedStep`]). Training never needs
//! these; they expose no kernel, buffer or plan, only what to time and what it took.

use std::sync::Arc;

use super::device_data::{fits_buffer, DeviceDataset, DeviceIndices};
use super::kernels::{submit, Dispatch, Kernels, MatmulCall, Variant};
pub use super::replica::{KernelTimer, StepProfile};
use super::replica::{Replica, SourceId};
use super::Gpu;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::ops::MatmulForm;
use crate::spec::{Init, Network, Optimizer};

/// One matrix product `C: [m, n]` of inner length `k`, recorded once on a device with every
/// element of A 0.5 and of B 0.25, so that every element of C is `k / 8` (checked by
/// [`PreparedMatmul::check`]).
pub struct PreparedMatmul {
    gpu: Gpu,
    dispatch: Dispatch,
    c: wgpu::Buffer,
    variant: Variant,
    shape: (usize, usize, usize),
}

impl PreparedMatmul {
    /// Records `form` on `gpu` with the variant named `variant`, or the one the autotuner
    /// picks for the shape when `None` (timing the candidates first, as training would).
    pub fn new(
        gpu: &Gpu,
        form: MatmulForm,
        (m, n, k): (usize, usize, usize),
        variant: Option<&str>,
    ) -> Result<Self> {
        let sizes = operand_floats(gpu, (m, n, k))?;
        let kernels = Kernels::new(gpu)?;
        let a = gpu.upload("A", &vec![0.5f32; sizes[0]], wgpu::BufferUsages::empty())?;
        let b = gpu.upload("B", &vec![0.25f32; sizes[1]], wgpu::BufferUsages::empty())?;
        let c = gpu.storage_buffer("C", sizes[2] as u64 * 4, wgpu::BufferUsages::COPY_SRC)?;
        let call = MatmulCall::plain(form, m, n, k, &a, &b, &c);
        let variant = match variant {
            None => kernels.tuner.choose(gpu, &kernels.matmul, &call)?,
            Some(name) => Variant::ALL
                .into_iter()
                .find(|v| v.name() == name)
                .filter(|v| kernels.matmul.supports(*v, &call))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "no matmul variant `{name}` for {} {m}x{n}x{k}; these run it: {}",
                        form.name(),
                        Self::variants(gpu, form, (m, n, k)).unwrap_or_default().join(", ")
                    ))
                })?,
        };
        let dispatch = kernels.matmul.record(gpu, variant, &call)?;
        Ok(PreparedMatmul { gpu: gpu.clone(), dispatch, c, variant, shape: (m, n, k) })
    }

    /// Names of the variants that can run `form` at this shape on `gpu`.
    pub fn variants(
        gpu: &Gpu,
        form: MatmulForm,
        (m, n, k): (usize, usize, usize),
    ) -> Result<Vec<&'static str>> {
        let [a, b, c] = operand_floats(gpu, (m, n, k))?.map(|floats| floats as u64 * 4);
        let kernels = Kernels::new(gpu)?;
        let a = gpu.storage_buffer("A", a, wgpu::BufferUsages::empty())?;
        let b = gpu.storage_buffer("B", b, wgpu::BufferUsages::empty())?;
        let c = gpu.storage_buffer("C", c, wgpu::BufferUsages::empty())?;
        let call = MatmulCall::plain(form, m, n, k, &a, &b, &c);
        Ok(Variant::ALL
            .into_iter()
            .filter(|v| kernels.matmul.supports(*v, &call))
            .map(Variant::name)
            .collect())
    }

    /// The variant that runs.
    pub fn variant(&self) -> &'static str {
        self.variant.name()
    }

    /// Floating-point operations of one product (`2 m n k`).
    pub fn flops(&self) -> f64 {
        let (m, n, k) = self.shape;
        2.0 * (m * n * k) as f64
    }

    /// Runs the product once and checks that every element of C is `k / 8`; an error names
    /// the variant that got it wrong.
    pub fn check(&self) -> Result<()> {
        self.run(1)?;
        let (m, n, k) = self.shape;
        let got: Vec<f32> = self.gpu.read(&self.c, 0, m * n)?;
        let want = k as f32 * 0.125;
        match got.iter().position(|&x| (x - want).abs() > 1e-3 * want) {
            None => Ok(()),
            Some(i) => Err(Error::Config(format!(
                "matmul variant {} gave C[{i}] = {}, expected {want}",
                self.variant(),
                got[i]
            ))),
        }
    }

    /// Submits the product `times` times back to back and waits for the last.
    pub fn run(&self, times: usize) -> Result<()> {
        let all: Vec<&Dispatch> = std::iter::repeat_n(&self.dispatch, times.max(1)).collect();
        submit(&self.gpu, &all);
        self.gpu.wait()
    }
}

/// The floats of A (`m x k`), B (`k x n`) and C (`m x n`), each checked against the device's
/// buffer limits before anything is allocated (on the host or the device).
fn operand_floats(gpu: &Gpu, (m, n, k): (usize, usize, usize)) -> Result<[usize; 3]> {
    if m == 0 || n == 0 || k == 0 {
        return Err(Error::Shape(format!("a {m}x{n}x{k} product: every dimension must be at least 1")));
    }
    let limits = gpu.device.limits();
    let limit = limits.max_buffer_size.min(limits.max_storage_buffer_binding_size);
    let floats = |name: &str, rows: usize, cols: usize| {
        let floats = rows.checked_mul(cols).filter(|f| f.checked_mul(4).is_some()).ok_or_else(|| {
            Error::Shape(format!("{name} of a {m}x{n}x{k} product: {rows}x{cols} floats overflow a size"))
        })?;
        let bytes = floats as u64 * 4;
        if !fits_buffer(gpu, bytes) {
            return Err(Error::OutOfMemory {
                adapter: gpu.report.label(),
                what: format!(
                    "{name} of a {m}x{n}x{k} product needs {bytes} bytes; one storage buffer holds {limit}"
                ),
            });
        }
        Ok(floats)
    };
    Ok([floats("A", m, k)?, floats("B", k, n)?, floats("C", m, n)?])
}

/// A training step of a network on a device, over the first rows of a data set, recorded
/// once: run it, or profile each of its kernel launches.
pub struct PreparedStep {
    replica: Replica,
    source: SourceId,
    batch: usize,
    steps: u64,
}

impl PreparedStep {
    /// `network` with He-initialised weights (seed 0) and Adam on `gpu`, its batches of
    /// `batch` rows drawn from `data` in order (which is uploaded once).
    pub fn new(gpu: &Gpu, network: &Network, data: &Dataset, batch: usize) -> Result<Self> {
        if batch == 0 || batch > data.len() {
            return Err(Error::Config(format!("a batch of {batch} rows from {} rows", data.len())));
        }
        let params = network.layout().init(Init::He, 0);
        let mut replica = Replica::new(gpu.clone(), network, Optimizer::default(), &params, batch)?;
        let resident = Arc::new(DeviceDataset::upload(gpu, data)?);
        let order: Vec<u32> = (0..data.len() as u32).collect();
        let source = replica.add_source(resident, DeviceIndices::upload(gpu, &order, order.len())?)?;
        Ok(PreparedStep { replica, source, batch, steps: 0 })
    }

    /// Takes one optimizer step on the first `batch` rows and waits for it.
    pub fn run(&mut self) -> Result<()> {
        self.replica.submit_steps(self.source, self.batch, 1, self.steps)?;
        self.steps += 1;
        self.replica.gpu.wait()
    }

    /// Kernel launches per step.
    pub fn dispatches(&self) -> usize {
        self.replica.dispatches_per_step()
    }

    /// Where the step's time goes: each launch timed `reps` times (timestamp queries where the
    /// device has trustworthy ones, the wall clock otherwise; [`StepProfile::timer`] says).
    pub fn profile(&mut self, reps: usize) -> Result<StepProfile> {
        self.replica.profile_train_step(self.source, self.batch, reps)
    }

    /// The autotuner's decisions so far, one line each: `form mxnxk -> variant` with the
    /// milliseconds of each candidate it timed.
    pub fn tuning(&self) -> Vec<String> {
        self.replica
            .kernels
            .tuner
            .records()
            .iter()
            .map(|r| {
                let timed: Vec<String> =
                    r.timings.iter().map(|(v, s)| format!("{}={:.3}ms", v.name(), s * 1e3)).collect();
                format!("{} {}x{}x{} -> {} [{}]", r.form, r.m, r.n, r.k, r.variant.name(), timed.join(" "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::kernels::tests::open_gpus;

    /// Shapes are checked before anything is allocated: an empty, overflowing or oversized
    /// product is an error (naming the operand), not an abort on the host's allocation; a
    /// small odd one runs and checks out.
    #[test]
    fn prepared_products_check_their_shapes_first() {
        let gpu = open_gpus(1).remove(0);
        let p = PreparedMatmul::new(&gpu, MatmulForm::AtB, (9, 17, 33), Some("naive")).expect("9x17x33");
        p.check().expect("C = k / 8 everywhere");
        assert_eq!((p.variant(), p.flops()), ("naive", 2.0 * (9 * 17 * 33) as f64));
        let names = PreparedMatmul::variants(&gpu, MatmulForm::AB, (9, 17, 33)).expect("variants");
        assert!(names.contains(&"naive"), "{names:?}");
        // (m, n, k), whether the error is OutOfMemory (else Shape), and what it names.
        let cases = [
            ((0, 4, 4), false, "every dimension"),
            ((usize::MAX, 2, 2), false, "A of a"),
            ((1 << 20, 4, 1 << 20), true, "A of a"),
            ((1, 1 << 20, 1 << 20), true, "B of a"),
            ((1 << 20, 1 << 20, 1), true, "C of a"),
        ];
        for (shape, out_of_memory, says) in cases {
            for variants_only in [false, true] {
                let result = if variants_only {
                    PreparedMatmul::variants(&gpu, MatmulForm::AB, shape).map(|_| ())
                } else {
                    PreparedMatmul::new(&gpu, MatmulForm::AB, shape, None).map(|_| ())
                };
                let message = match (out_of_memory, result) {
                    (false, Err(Error::Shape(m))) => m,
                    (true, Err(Error::OutOfMemory { what, .. })) => what,
                    (_, other) => panic!("{shape:?}: {other:?}"),
                };
                assert!(message.contains(says), "{shape:?}: {message}");
            }
        }
    }
}
