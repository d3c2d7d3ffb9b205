//! Development benchmarks (criterion): the matmul variants on the training shapes, one whole
//! training step, and the CPU reference's step, on the first Vulkan adapter (lavapipe here),
//! else the first GL adapter. Each product is checked before it is timed. The user-facing
//! report is `examples/bench.rs`.
//!
//!     cargo bench --bench kernels

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgtrain::cpu::CpuMlp;
use wgtrain::data::Dataset;
use wgtrain::gpu::profile::{PreparedMatmul, PreparedStep};
use wgtrain::gpu::{self, AdapterSelection, Gpu};
use wgtrain::{Init, MatmulForm, Network, Optimizer};

/// A device on the first Vulkan adapter, else the first GL one; `None` (said on stderr) when
/// there is neither.
fn bench_gpu() -> Option<Gpu> {
    let all = gpu::list_adapters();
    let Some(r) = ["vulkan", "gl"].iter().find_map(|b| all.iter().find(|r| r.backend == *b)) else {
        eprintln!("no Vulkan or GL adapter (found {}): skipping the GPU benches", all.len());
        return None;
    };
    gpu::open(&AdapterSelection::Indices(vec![r.index]), 1).ok().map(|mut g| g.remove(0))
}

fn bench_matmul(c: &mut Criterion) {
    let Some(gpu) = bench_gpu() else { return };
    let mut group = c.benchmark_group(format!("matmul on {}", gpu.report.name));
    for (form, m, n, k) in [(MatmulForm::AB, 128, 64, 784), (MatmulForm::AtB, 784, 64, 128)] {
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for name in PreparedMatmul::variants(&gpu, form, (m, n, k)).expect("variants") {
            let product = PreparedMatmul::new(&gpu, form, (m, n, k), Some(name)).expect("record");
            product.check().unwrap_or_else(|e| panic!("{e}"));
            group.bench_function(format!("{} {m}x{n}x{k} {name}", form.name()), |bench| {
                bench.iter(|| product.run(1).expect("run"))
            });
        }
    }
    group.finish();
}

fn batch(rows: usize) -> Dataset {
    let px: Vec<u8> = (0..rows * 784).map(|i| (i * 31 % 251) as u8).collect();
    let labels = (0..rows).map(|r| (r % 10) as u8).collect();
    Dataset::new(px, labels, 784, 10).unwrap()
}

fn bench_step(c: &mut Criterion) {
    let spec = Network::default();
    let params = spec.layout().init(Init::He, 0);
    let data = batch(128);
    let mut group = c.benchmark_group("train step 784-64-10 b128");
    group.throughput(Throughput::Elements(128));
    if let Some(gpu) = bench_gpu() {
        let mut step = PreparedStep::new(&gpu, &spec, &data, 128).expect("step");
        group.bench_function(format!("gpu {}", gpu.report.name), |bench| {
            bench.iter(|| step.run().expect("step"))
        });
    }
    let mut cpu = CpuMlp::new(spec.clone(), params, Optimizer::default()).unwrap();
    let x = data.to_f32();
    group.bench_function("cpu reference", |bench| bench.iter(|| cpu.train_step(&x, data.labels()).unwrap()));
    group.finish();
}

criterion_group!(benches, bench_matmul, bench_step);
criterion_main!(benches);
