//! Development benchmarks (criterion): the matmul variants on the training shapes, one whole
//! training step, and the CPU reference's step, on the first Vulkan adapter (lavapipe here),
//! else the first GL adapter. Each product is checked before it is timed. The user-facing
//! report is `examples/bench.rs`.
//!
//!     cargo bench --bench kernels

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgtrain::cpu::CpuMlp;
use wgtrain::data::Dataset;
use wgtrain::gpu::device_data::{DeviceDataset, DeviceIndices};
use wgtrain::gpu::kernels::{submit, Kernels, MatmulCall, Variant};
use wgtrain::gpu::replica::Replica;
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
    let kernels = Kernels::new(&gpu).expect("kernels");
    let mut group = c.benchmark_group(format!("matmul on {}", gpu.report.name));
    for (form, m, n, k) in [(MatmulForm::AB, 128, 64, 784), (MatmulForm::AtB, 784, 64, 128)] {
        let a = gpu.upload("A", &vec![0.5f32; m * k], wgpu::BufferUsages::empty()).unwrap();
        let b = gpu.upload("B", &vec![0.25f32; k * n], wgpu::BufferUsages::empty()).unwrap();
        let out = gpu.storage_buffer("C", (m * n * 4) as u64, wgpu::BufferUsages::COPY_SRC).unwrap();
        let call = MatmulCall::plain(form, m, n, k, &a, &b, &out);
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for v in Variant::ALL.into_iter().filter(|v| kernels.matmul.supports(*v, &call)) {
            let d = kernels.matmul.record(&gpu, v, &call).unwrap();
            submit(&gpu, &[&d]);
            let got: Vec<f32> = gpu.read(&out, 0, m * n).unwrap();
            assert!(
                got.iter().all(|&x| (x - k as f32 * 0.125).abs() < 1e-3 * k as f32),
                "{} is wrong",
                v.name()
            );
            group.bench_function(format!("{} {m}x{n}x{k} {}", form.name(), v.name()), |bench| {
                bench.iter(|| {
                    submit(&gpu, &[&d]);
                    gpu.wait().unwrap();
                })
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
        let mut r = Replica::new(gpu.clone(), &spec, Optimizer::default(), &params, 128).unwrap();
        let resident = Arc::new(DeviceDataset::upload(&gpu, &data).unwrap());
        let order: Vec<u32> = (0..128).collect();
        let src = r.add_source(resident, DeviceIndices::upload(&gpu, &order, 128).unwrap()).unwrap();
        let mut t = 0;
        group.bench_function(format!("gpu {}", gpu.report.name), |bench| {
            bench.iter(|| {
                r.submit_epoch(src, 128, t, &mut |_| Ok(())).unwrap();
                gpu.wait().unwrap();
                t += 1;
            })
        });
    }
    let mut cpu = CpuMlp::new(spec.clone(), params, Optimizer::default()).unwrap();
    let x = data.to_f32();
    group.bench_function("cpu reference", |bench| bench.iter(|| cpu.train_step(&x, data.labels()).unwrap()));
    group.finish();
}

criterion_group!(benches, bench_matmul, bench_step);
criterion_main!(benches);
