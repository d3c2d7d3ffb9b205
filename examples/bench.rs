//! The benchmark harness: matmul GFLOP/s per form on every adapter and the CPU reference,
//! and (with the trainer) seconds per MNIST epoch. A readable table, or `--json` records.
//!
//!     cargo run --release --example bench                 # everything, as a table
//!     cargo run --release --example bench -- --json       # one JSON object per line

use std::time::Instant;

use clap::Parser;
use serde_json::json;
use wgtrain::device::{self, AdapterSelection, Gpu};
use wgtrain::kernels::{submit, Dispatch, Kernels, MatmulCall};
use wgtrain::MatmulForm;

#[derive(Parser)]
#[command(about = "Benchmark wgtrain's kernels and training on every adapter")]
struct Args {
    /// One JSON record per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Adapters to measure: all, best, vulkan, gl, or indices like 0,2.
    #[arg(long, default_value = "all")]
    adapter: String,
    /// Skip the 1024^3 products (slow on software adapters).
    #[arg(long)]
    quick: bool,
}

/// The shapes of one 784-64-10 training step at batch 128, and the classic 1024^3.
fn shapes(quick: bool) -> Vec<(MatmulForm, usize, usize, usize)> {
    use MatmulForm::*;
    let mut s = vec![(AB, 128, 64, 784), (AtB, 784, 64, 128), (ABt, 128, 64, 10), (AB, 128, 10, 64)];
    if !quick {
        s.extend([(AB, 1024, 1024, 1024), (AtB, 1024, 1024, 1024), (ABt, 1024, 1024, 1024)]);
    }
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds per product over several timed submissions.
fn time_dispatch(gpu: &Gpu, d: &Dispatch, flops: f64) -> Result<f64, wgtrain::Error> {
    submit(gpu, &[d]);
    gpu.wait()?;
    // ~20 ms of work per submission at a guessed 10 GFLOP/s, at least one product.
    let reps = ((2e8 / flops) as usize).clamp(1, 64);
    let all: Vec<&Dispatch> = std::iter::repeat_n(d, reps).collect();
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        submit(gpu, &all);
        gpu.wait()?;
        samples.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(median(samples))
}

fn bench_gpu(gpu: &Gpu, args: &Args) -> Result<(), wgtrain::Error> {
    let kernels = Kernels::new(gpu)?;
    for (form, m, n, k) in shapes(args.quick) {
        let a = gpu.upload("A", &vec![0.5f32; m * k], wgpu::BufferUsages::empty())?;
        let b = gpu.upload("B", &vec![0.25f32; k * n], wgpu::BufferUsages::empty())?;
        let c = gpu.storage_buffer("C", (m * n * 4) as u64, wgpu::BufferUsages::COPY_SRC)?;
        let call = MatmulCall::plain(form, m, n, k, &a, &b, &c);
        let variant = kernels.tuner.choose(gpu, &kernels.matmul, &call)?;
        let d = kernels.matmul.record(gpu, variant, &call)?;
        let flops = 2.0 * (m * n * k) as f64;
        let secs = time_dispatch(gpu, &d, flops)?;
        // Correctness before speed: every element of C must be k * 0.5 * 0.25.
        let got: Vec<f32> = gpu.read(&c, 0, m * n)?;
        let want = k as f32 * 0.125;
        if got.iter().any(|&x| (x - want).abs() > 1e-3 * want) {
            return Err(wgtrain::Error::Config(format!("{} {} gave a wrong product", variant.name(), form.name())));
        }
        let gflops = flops / secs / 1e9;
        let r = &gpu.report;
        if args.json {
            println!(
                "{}",
                json!({"adapter": r.name, "backend": r.backend, "device_type": r.device_type, "kernel": "matmul",
                       "form": form.name(), "m": m, "n": n, "k": k, "variant": variant.name(), "gflops": gflops})
            );
        } else {
            println!("{:<34} {:<7} {:<4} {:>5}x{:<5}x{:<5} {:<8} {:>8.2} GFLOP/s", r.name, r.backend, form.name(), m, n, k, variant.name(), gflops);
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let selection: AdapterSelection = match args.adapter.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let gpus = device::open(&selection, 1).unwrap_or_else(|e| {
        eprintln!("{e}");
        Vec::new()
    });
    for gpu in &gpus {
        if let Err(e) = bench_gpu(gpu, &args) {
            eprintln!("{}: {e}", gpu.report.label());
        }
    }
}
