//! The CPU executor against the machine's peak, in one run: the peak of a fused multiply-add
//! loop on one thread and on every thread, then full-MNIST epochs on the CPU executor
//! (60,000 training images and a validation pass over the 10,000 test images, as
//! `examples/bench.rs` times them), with GFLOP/s and the share of the peak.
//!
//!     cargo run --release --example cpu_bench                          # table
//!     cargo run --release --example cpu_bench -- --json --epochs 6     # JSON records
//!
//! The peak loop keeps 12 independent accumulators (more than the FMA latency times the
//! number of FMA pipes) and repeats each measurement, keeping the best: on a shared machine
//! only the fastest run shows what the cores can do. An epoch's FLOPs are counted from the
//! model: per training row `2 * in * out` for each layer's forward and weight gradient and for
//! each input gradient above the first layer; per validation row the forward only. That is the
//! dense count, the work of a dense engine (PyTorch's, Burn's), and `gflops` and
//! `percent_of_peak` divide it by the epoch's time. The CPU executor's first layer skips the
//! zero pixels' multiply-adds (`src/cpu/sparse.rs`), so it executes fewer:
//! `executed_gflop_per_epoch` counts the first layer's products at the data's fraction of
//! nonzero pixels (about 0.19 for MNIST), and `executed_gflops` is the rate the cores ran at.

use std::time::Instant;

use clap::Parser;
use serde_json::json;
use wgtrain::data::{default_mnist_dir, load_mnist, Dataset};
use wgtrain::{Backend, Network, TrainEvent, Trainer, TrainerOptions};

#[path = "support/fma.rs"]
mod fma;
use fma::fma_loop;

#[derive(Parser)]
#[command(about = "The CPU executor's MNIST epoch against the machine's measured FMA peak")]
struct Args {
    /// One JSON record per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Epochs per batch size; the median of all but the first is reported.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Batch sizes.
    #[arg(long, default_value = "128,32", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Measure the peak only.
    #[arg(long)]
    peak_only: bool,
}

/// Best GFLOP/s of the FMA loop with `threads` threads, over `tries` runs of ~50 ms.
fn fma_peak(threads: usize, tries: usize) -> f64 {
    let iters = 4_000_000u64;
    let mut best = 0.0f64;
    for _ in 0..tries {
        let start = Instant::now();
        let flops_per_thread: f64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(move || fma_loop(iters))).collect();
            handles.into_iter().map(|h| h.join().expect("FMA thread")).sum::<f64>() / threads as f64
        });
        let secs = start.elapsed().as_secs_f64();
        best = best.max(threads as f64 * flops_per_thread / secs / 1e9);
    }
    best
}

/// FLOPs of one epoch: `train` rows forward and backward, `val` rows forward.
fn epoch_flops(spec: &Network, train: usize, val: usize) -> f64 {
    let widths = spec.widths();
    let macs: Vec<f64> = widths.windows(2).map(|w| (w[0] * w[1]) as f64).collect();
    let forward: f64 = macs.iter().sum();
    let input_grads: f64 = macs[1..].iter().sum();
    2.0 * (train as f64 * (2.0 * forward + input_grads) + val as f64 * forward)
}

/// [`epoch_flops`] with the first layer's forward and weight-gradient products counted at the
/// fraction of nonzero inputs of their rows, as the CPU executor runs them on mostly-zero
/// pixels.
fn executed_flops(spec: &Network, train: &Dataset, val: &Dataset) -> f64 {
    let nonzero = |d: &Dataset| {
        let p = d.pixels().unwrap_or(&[]);
        p.iter().filter(|&&v| v != 0).count() as f64 / p.len().max(1) as f64
    };
    let widths = spec.widths();
    let first = 2.0 * (widths[0] * widths[1]) as f64;
    let (t, v) = (train.len() as f64, val.len() as f64);
    let skipped = first * (2.0 * t * (1.0 - nonzero(train)) + v * (1.0 - nonzero(val)));
    epoch_flops(spec, train.len(), val.len()) - skipped
}

/// `(on-CPU, waiting to run)` seconds summed over this process's threads, from Linux's
/// `/proc/self/task/*/schedstat`; nothing elsewhere.
fn sched_seconds() -> Option<(f64, f64)> {
    let (mut run, mut wait) = (0u64, 0u64);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        run += fields.next()??;
        wait += fields.next()??;
    }
    Some((run as f64 / 1e9, wait as f64 / 1e9))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> wgtrain::Result<()> {
    let args = Args::parse();
    let threads = rayon::current_num_threads();
    let (peak1, peak) = (fma_peak(1, 5), fma_peak(threads, 5));
    if args.json {
        println!("{}", json!({"kernel": "fma_peak", "threads": 1, "gflops": peak1}));
        println!("{}", json!({"kernel": "fma_peak", "threads": threads, "gflops": peak}));
    } else {
        println!("FMA peak: {peak1:.1} GFLOP/s on 1 thread, {peak:.1} GFLOP/s on {threads} threads");
    }
    if args.peak_only {
        return Ok(());
    }
    let mnist = load_mnist(default_mnist_dir()?)?;
    let spec = Network::default();
    let flops = epoch_flops(&spec, mnist.train.len(), mnist.test.len());
    let executed = executed_flops(&spec, &mnist.train, &mnist.test);
    for &batch in &args.batches {
        let options = TrainerOptions {
            spec: spec.clone(),
            batch_size: batch,
            epochs: args.epochs.max(2),
            validation_split: 0.0,
            backend: Backend::Cpu,
            ..TrainerOptions::default()
        };
        let mut trainer = Trainer::new(options)?;
        // On-CPU and run-queue time of the process at the end of each epoch.
        let mut sched = Vec::new();
        let report = trainer.fit(&mnist.train, Some(&mnist.test), |event| {
            if let TrainEvent::EpochEnd { .. } = event {
                sched.extend(sched_seconds());
            }
        })?;
        let secs: Vec<f64> = report.history.epochs.iter().map(|e| e.seconds).collect();
        let steady = median(secs[1..].to_vec());
        // Per epoch after the first: CPU seconds used (all threads) and seconds spent ready to
        // run but waiting for a core, which shows how busy the machine was.
        let per_epoch = |f: fn(&(f64, f64)) -> f64| {
            let d: Vec<f64> = sched.windows(2).map(|w| f(&w[1]) - f(&w[0])).collect();
            if d.is_empty() {
                f64::NAN
            } else {
                median(d)
            }
        };
        let (cpu, waited) = (per_epoch(|s| s.0), per_epoch(|s| s.1));
        let gflops = flops / steady / 1e9;
        let acc = report.history.last().and_then(|e| e.get("val_accuracy")).unwrap_or(f32::NAN);
        if args.json {
            println!(
                "{}",
                json!({"kernel": "cpu_epoch", "batch": batch, "seconds_per_epoch": steady, "epochs": secs,
                       "gflop_per_epoch": flops / 1e9, "gflops": gflops, "percent_of_peak": 100.0 * gflops / peak,
                       "executed_gflop_per_epoch": executed / 1e9, "executed_gflops": executed / steady / 1e9,
                       "cpu_seconds_per_epoch": cpu, "runqueue_wait_seconds_per_epoch": waited,
                       "val_accuracy": acc})
            );
        } else {
            println!(
                "batch {batch:>3}: {steady:.3} s/epoch (median of epochs 2..{}), {:.2} GFLOP with validation, \
                 {gflops:.1} GFLOP/s = {:.0} % of the {threads}-thread peak (dense count; {:.2} GFLOP \
                 executed, {:.1} GFLOP/s), val accuracy {acc:.4}; per epoch {cpu:.3} s on the CPUs, \
                 {waited:.3} s waiting for one",
                secs.len(),
                flops / 1e9,
                100.0 * gflops / peak,
                executed / 1e9,
                executed / steady / 1e9
            );
        }
    }
    Ok(())
}
