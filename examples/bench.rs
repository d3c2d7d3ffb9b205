//! The benchmark harness: matmul GFLOP/s per form on every adapter and the CPU reference,
//! the time of each kernel of one training step, (with the trainer) seconds per MNIST epoch,
//! and the first epoch of a process on a machine that never ran wgtrain (Mesa's shader cache
//! and wgtrain's tuning cache empty) against one that did. A readable table, or `--json`.
//!
//!     cargo run --release --example bench                 # everything, as a table
//!     cargo run --release --example bench -- --json       # one JSON object per line
//!     cargo run --release --example bench -- --only train --batches 128 --adapter vulkan
//!     mpirun -np 2 target/release/examples/bench --only mpi --json   # built with --features mpi
//!     cargo run --release --example bench -- --only first # cold and warm first epochs
//!     cargo run --release --example bench -- --only stream --adapter vulkan  # streamed vs resident

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use serde_json::json;

use wgtrain::data::{default_mnist_dir, load_mnist, Mnist};
use wgtrain::gpu::profile::{PreparedMatmul, PreparedStep};
use wgtrain::gpu::{self, AdapterSelection, Gpu};
use wgtrain::{Activation, Backend, MatmulForm, Network, Trainer, TrainerOptions, TuningCache};

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
    /// Matmul variants to time side by side on every shape they support (e.g.
    /// v4_abt,tex_abt), instead of the one the autotuner chooses.
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Epochs per training measurement (the first is reported apart).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Sections to run, comma separated: matmul, step, train, parallel, first, stream (not in
    /// the default: streamed against resident data, support/stream.rs); or mpi alone,
    /// under mpirun (built with --features mpi): data parallel across the job's processes.
    #[arg(long, default_value = "matmul,step,train,parallel,first", value_delimiter = ',')]
    only: Vec<String>,
    /// With --only mpi: what each process trains on: cpu, or adapters (vulkan, local-rank, ...).
    #[arg(long, default_value = "cpu")]
    mpi_local: String,
    /// With --only mpi: samples/s of the same run in one process, for the scaling efficiency.
    #[arg(long)]
    mpi_baseline: Option<f64>,
    /// Hidden layer widths of the trained model (ReLU): the demo's 64, or 1024,1024 for the
    /// wide model of BENCHMARKS.md.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Train on the first N training images only (the wide model's epoch on a software
    /// adapter takes minutes on all 60,000); validation stays the 10,000 test images.
    #[arg(long)]
    train_rows: Option<usize>,
    /// Leave out the CPU executor's training and the CPU reference's products (a GPU
    /// machine's call, where they would only spend its time).
    #[arg(long)]
    no_cpu: bool,
    /// Batch sizes for the training measurement.
    #[arg(long, default_value = "32,128", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Runs per cache state in the first-epoch section (the median is reported too).
    #[arg(long, default_value_t = 3)]
    first_runs: usize,
    /// Internal: be the child process of the first-epoch section, on this adapter index,
    /// keeping tuning decisions in --tuning-dir.
    #[arg(long, hide = true)]
    first_epoch_child: Option<usize>,
    #[arg(long, hide = true)]
    tuning_dir: Option<PathBuf>,
}

impl Args {
    fn wants(&self, section: &str) -> bool {
        self.only.iter().any(|s| s == section)
    }
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

/// Median seconds per product over several timed submissions of a product checked first.
fn time_product(product: &PreparedMatmul) -> Result<f64, wgtrain::Error> {
    // Correctness before speed (this also builds the pipeline outside the timing).
    product.check()?;
    // ~20 ms of work per submission at a guessed 10 GFLOP/s, at least one product.
    let reps = ((2e8 / product.flops()) as usize).clamp(1, 64);
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        product.run(reps)?;
        samples.push(t.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(median(samples))
}

fn bench_gpu(gpu: &Gpu, args: &Args) -> Result<(), wgtrain::Error> {
    let forced: Vec<Option<&str>> = args.variants.iter().map(|v| Some(v.as_str())).collect();
    let choices = if forced.is_empty() { vec![None] } else { forced };
    for ((form, m, n, k), choice) in
        shapes(args.quick).into_iter().flat_map(|s| choices.iter().map(move |c| (s, *c)))
    {
        let product = match PreparedMatmul::new(gpu, form, (m, n, k), choice) {
            Ok(p) => p,
            // A variant asked for by name that cannot compute this shape.
            Err(_) if choice.is_some() => continue,
            Err(e) => return Err(e),
        };
        let variant = product.variant();
        let (flops, secs) = (product.flops(), time_product(&product)?);
        let gflops = flops / secs / 1e9;
        let r = &gpu.report;
        if args.json {
            println!(
                "{}",
                json!({"adapter": r.name, "backend": r.backend, "device_type": r.device_type, "kernel": "matmul",
                       "form": form.name(), "m": m, "n": n, "k": k, "variant": variant, "gflops": gflops})
            );
        } else {
            println!(
                "{:<34} {:<7} {:<4} {:>5}x{:<5}x{:<5} {:<8} {:>8.2} GFLOP/s",
                r.name,
                r.backend,
                form.name(),
                m,
                n,
                k,
                variant,
                gflops
            );
        }
    }
    Ok(())
}

/// GFLOP/s of the CPU reference's matmul on the same shapes.
fn bench_cpu_matmul(args: &Args) -> Result<(), wgtrain::Error> {
    for (form, m, n, k) in shapes(args.quick) {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let c = wgtrain::cpu::matmul(form, m, n, k, &a, &b)?;
        if c.iter().any(|&x| (x - k as f32 * 0.125).abs() > 1e-3 * k as f32) {
            return Err(wgtrain::Error::Config("the CPU matmul gave a wrong product".into()));
        }
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((2e9 / flops) as usize).clamp(1, 200);
        let mut samples = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(wgtrain::cpu::matmul(form, m, n, k, &a, &b)?);
            }
            samples.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        let gflops = flops / median(samples) / 1e9;
        if args.json {
            println!(
                "{}",
                json!({"adapter": "cpu", "backend": "cpu", "device_type": "cpu", "kernel": "matmul",
                       "form": form.name(), "m": m, "n": n, "k": k, "variant": wgtrain::cpu::matmul_kernel(), "gflops": gflops})
            );
        } else {
            println!(
                "{:<34} {:<7} {:<4} {:>5}x{:<5}x{:<5} {:<8} {:>8.2} GFLOP/s",
                "cpu reference",
                "cpu",
                form.name(),
                m,
                n,
                k,
                wgtrain::cpu::matmul_kernel(),
                gflops
            );
        }
    }
    Ok(())
}

/// Seconds per epoch of full-MNIST training (60,000 images, validation on the 10,000 test
/// images each epoch, as the Keras peer does) at each batch size.
fn bench_train(
    backend: Backend,
    name: (&str, &str, &str),
    mnist: &Mnist,
    args: &Args,
) -> Result<(), wgtrain::Error> {
    for &batch in &args.batches {
        let widths: Vec<usize> = [784].into_iter().chain(args.hidden.iter().copied()).chain([10]).collect();
        let options = TrainerOptions {
            spec: Network::classifier(&widths, Activation::Relu),
            batch_size: batch,
            epochs: args.epochs.max(2),
            validation_split: 0.0,
            backend: backend.clone(),
            ..TrainerOptions::default()
        };
        let start = Instant::now();
        let mut trainer = Trainer::new(options)?;
        let setup = start.elapsed().as_secs_f64();
        let taken;
        let train = match args.train_rows {
            Some(n) => {
                taken = mnist.train.take(n);
                &taken
            }
            None => &mnist.train,
        };
        let report = trainer.fit(train, Some(&mnist.test), |_| {})?;
        let secs: Vec<f64> = report.history.epochs.iter().map(|e| e.seconds).collect();
        // The first epoch of a fresh process includes building pipelines and choosing kernels.
        let first = setup + secs[0];
        let steady = median(secs[1..].to_vec());
        let acc = report.history.last().and_then(|e| e.get("val_accuracy")).unwrap_or(f32::NAN);
        let sps = train.len() as f64 / steady;
        let dps = trainer.dispatches_per_step();
        let (adapter, backend_name, device_type) = name;
        if args.json {
            println!(
                "{}",
                json!({"kernel": "train_epoch", "adapter": adapter, "backend": backend_name, "device_type": device_type,
                       "hidden": args.hidden, "train_rows": train.len(), "batch": batch, "seconds_per_epoch": steady, "first_epoch_seconds": first,
                       "samples_per_second": sps, "dispatches_per_step": dps, "test_accuracy": acc,
                       "setup_seconds": setup})
            );
        } else {
            println!(
                "{adapter:<34} {backend_name:<7} train b{batch:<4} {steady:>6.3} s/epoch (first {first:>6.2} s, setup {setup:.2} s) {sps:>9.0} samples/s {dps:>2} dispatches/step, test acc {acc:.4}"
            );
        }
    }
    Ok(())
}

/// Device time of each kernel launch of one training step at batch 128 (timestamp queries
/// where the adapter has trustworthy ones, else the wall clock: the record says which).
fn bench_step(gpu: &Gpu, mnist: &Mnist, args: &Args) -> Result<(), wgtrain::Error> {
    let mut step = PreparedStep::new(gpu, &Network::default(), &mnist.train, 128)?;
    let profile = step.profile(20)?;
    let r = &gpu.report;
    let timer = profile.timer.name();
    for (i, (name, secs)) in profile.kernels.iter().enumerate() {
        if args.json {
            println!(
                "{}",
                json!({"kernel": "step_launch", "adapter": r.name, "backend": r.backend, "device_type": r.device_type,
                       "batch": 128, "launch": i, "name": name, "seconds": secs, "timer": timer})
            );
        } else {
            println!(
                "{:<34} {:<7} step launch {i:>2} {name:<14} {:>8.3} ms ({timer})",
                r.name,
                r.backend,
                secs * 1e3
            );
        }
    }
    if !args.json {
        println!(
            "{:<34} {:<7} step total {:>2} launches {:>8.3} ms of kernel time",
            r.name,
            r.backend,
            profile.kernels.len(),
            profile.total() * 1e3
        );
    }
    Ok(())
}

/// Data parallel on one adapter: 1, 2 and 4 logical devices, batch 128.
fn bench_parallel(selection: &AdapterSelection, mnist: &Mnist, args: &Args) -> Result<(), wgtrain::Error> {
    let mut base = None;
    for replicas in [1usize, 2, 4] {
        let gpus = gpu::open(selection, replicas)?;
        let name = gpus[0].report.clone();
        let options = TrainerOptions {
            batch_size: 128,
            epochs: 2,
            validation_split: 0.0,
            backend: Backend::Devices(gpus),
            ..TrainerOptions::default()
        };
        let mut trainer = Trainer::new(options)?;
        let report = trainer.fit(&mnist.train, None, |_| {})?;
        let secs = report.history.epochs[1].seconds;
        let sps = mnist.train.len() as f64 / secs;
        let base_sps = *base.get_or_insert(sps);
        let stats = trainer.parallel_stats().unwrap_or_default();
        let per_step = |x: f64| if stats.steps > 0 { x / stats.steps as f64 * 1e3 } else { 0.0 };
        let (reduce_ms, download_ms, upload_ms) = (
            per_step(stats.reduce_secs),
            per_step(stats.compute_and_download_secs),
            per_step(stats.upload_secs),
        );
        let efficiency = sps / (replicas as f64 * base_sps);
        if args.json {
            println!(
                "{}",
                json!({"kernel": "train_epoch_parallel", "adapter": name.name, "backend": name.backend,
                       "device_type": name.device_type, "batch": 128, "replicas": replicas,
                       "samples_per_second": sps, "reduce_ms_per_step": reduce_ms,
                       "compute_and_download_ms_per_step": download_ms, "upload_ms_per_step": upload_ms,
                       "scaling_efficiency": efficiency})
            );
        } else {
            println!(
                "{:<34} {:<7} {replicas} replica(s) b128 {sps:>9.0} samples/s  reduce {reduce_ms:.3} ms/step  compute+download {download_ms:.3} ms/step  upload {upload_ms:.3} ms/step  efficiency {efficiency:.2}",
                name.name, name.backend
            );
        }
    }
    Ok(())
}

#[path = "support/distributed.rs"]
mod distributed;
#[path = "support/stream.rs"]
mod stream;

/// Data parallel across the processes of an MPI job: full-MNIST epochs at global batch 128,
/// one replica per process, and where a step's time goes (averages over every step, the
/// first epoch's included), then the exchange of a gradient alone, with no training around
/// it (the median of 200). Rank 0 prints one record.
fn bench_mpi(group: Option<&distributed::Group>, mnist: &Mnist, args: &Args) -> Result<(), wgtrain::Error> {
    let options = TrainerOptions {
        batch_size: 128,
        epochs: args.epochs.max(2),
        validation_split: 0.0,
        backend: distributed::local_backend(&args.mpi_local, 1, group)?,
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(options)?;
    let report = trainer.fit(&mnist.train, None, |_| {})?;
    let steady = median(report.history.epochs[1..].iter().map(|e| e.seconds).collect());
    let sps = mnist.train.len() as f64 / steady;
    let ranks = distributed::size(group);
    let efficiency = args.mpi_baseline.map(|base| sps / (ranks as f64 * base));
    let stats = trainer.parallel_stats().unwrap_or_default();
    let per_step = |x: f64| x / stats.steps.max(1) as f64 * 1e3;
    let (compute, local, exchange, update) = (
        per_step(stats.compute_and_download_secs),
        per_step(stats.reduce_secs),
        per_step(stats.exchange_secs),
        per_step(stats.upload_secs),
    );
    let devices = trainer.devices();
    let alone = distributed::time_exchange(group, trainer.parameters()?.len(), 200)?;
    if !distributed::is_primary(group) {
        return Ok(());
    }
    if args.json {
        println!(
            "{}",
            json!({"kernel": "train_epoch_mpi", "local": args.mpi_local, "adapter": devices.join(", "), "batch": 128,
                   "ranks": ranks, "replicas_per_rank": devices.len(), "seconds_per_epoch": steady,
                   "samples_per_second": sps, "compute_ms_per_step": compute, "local_reduce_ms_per_step": local,
                   "exchange_ms_per_step": exchange, "update_ms_per_step": update, "scaling_efficiency": efficiency,
                   "exchange_alone_ms": alone.map(|s| s * 1e3)})
        );
    } else {
        let eff = efficiency.map_or("-".to_string(), |e| format!("{e:.2}"));
        println!(
            "{:<34} {ranks} rank(s) x {} replica(s) b128 {sps:>9.0} samples/s  compute {compute:.3} ms/step  local reduction {local:.3}  exchange {exchange:.3} (alone {:.3})  update {update:.3}  efficiency {eff}",
            devices.join(", "),
            devices.len(),
            alone.unwrap_or(0.0) * 1e3
        );
    }
    Ok(())
}

/// The child of [`bench_first_epoch`]: a new process trains one epoch of the default job
/// (batch 128, validation on the test set as in `bench_train`) on adapter `index` and prints
/// `setup_seconds epoch_seconds` (setup: opening the device and building the trainer).
fn first_epoch_child(index: usize, tuning_dir: Option<PathBuf>, mnist: &Mnist) -> Result<(), wgtrain::Error> {
    let start = Instant::now();
    let gpus = gpu::open(&AdapterSelection::Indices(vec![index]), 1)?;
    let options = TrainerOptions {
        epochs: 1,
        validation_split: 0.0,
        backend: Backend::Devices(gpus),
        tuning_cache: tuning_dir.map_or(TuningCache::Disabled, TuningCache::Dir),
        ..TrainerOptions::default()
    };
    let mut trainer = Trainer::new(options)?;
    let setup = start.elapsed().as_secs_f64();
    let report = trainer.fit(&mnist.train, Some(&mnist.test), |_| {})?;
    println!("{setup} {}", report.history.epochs[0].seconds);
    Ok(())
}

/// Setup plus first epoch of a fresh process, `args.first_runs` times with Mesa's shader
/// cache and wgtrain's tuning cache empty (a new folder for each run, through
/// MESA_SHADER_CACHE_DIR), then as many times with both left as the first cold run wrote
/// them. Each run is a child process, since a driver reads its cache settings once.
fn bench_first_epoch(gpu: &Gpu, args: &Args) -> Result<(), wgtrain::Error> {
    let exe = std::env::current_exe().map_err(|e| wgtrain::Error::io("bench executable", e))?;
    let run = |caches: &std::path::Path| -> Result<(f64, f64), wgtrain::Error> {
        // Mesa creates only the last folder of its cache path, and without one caches nothing.
        let mesa = caches.join("mesa");
        std::fs::create_dir_all(&mesa).map_err(|e| wgtrain::Error::io(&mesa, e))?;
        let out = Command::new(&exe)
            .args(["--first-epoch-child", &gpu.report.index.to_string(), "--tuning-dir"])
            .arg(caches.join("wgtrain"))
            .env("MESA_SHADER_CACHE_DIR", &mesa)
            .output()
            .map_err(|e| wgtrain::Error::io(&exe, e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut nums = text.split_whitespace().filter_map(|t| t.parse::<f64>().ok());
        match (out.status.success(), nums.next(), nums.next()) {
            (true, Some(setup), Some(epoch)) => Ok((setup, epoch)),
            _ => Err(wgtrain::Error::Config(format!(
                "first-epoch child failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    };
    let temp = |what: &str| std::env::temp_dir().join(format!("wgtrain-first-{what}-{}", std::process::id()));
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let kept = temp("kept");
    for i in 0..args.first_runs.max(1) {
        let dir = if i == 0 { kept.clone() } else { temp(&format!("cold{i}")) };
        cold.push(run(&dir)?);
        if i > 0 {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    for _ in 0..args.first_runs.max(1) {
        warm.push(run(&kept)?);
    }
    let _ = std::fs::remove_dir_all(&kept);
    let r = &gpu.report;
    for (cache, runs) in [("cold", &cold), ("warm", &warm)] {
        let firsts: Vec<f64> = runs.iter().map(|(s, e)| s + e).collect();
        let epochs: Vec<f64> = runs.iter().map(|(_, e)| *e).collect();
        let (first, epoch) = (median(firsts.clone()), median(epochs.clone()));
        if args.json {
            println!(
                "{}",
                json!({"kernel": "first_epoch", "adapter": r.name, "backend": r.backend, "device_type": r.device_type,
                       "batch": 128, "cache": cache, "first_epoch_seconds": first, "epoch_seconds": epoch,
                       "runs_first_epoch_seconds": firsts, "runs_epoch_seconds": epochs})
            );
        } else {
            println!(
                "{:<34} {:<7} first epoch, {cache} caches: {first:>6.2} s with setup ({epoch:.2} s the epoch alone), median of {} runs",
                r.name,
                r.backend,
                runs.len()
            );
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    if args.wants("mpi") {
        // Every rank of the job runs this; the group lives until a successful end.
        let group = distributed::join(Some("mpi"), 300).unwrap_or_else(|e| distributed::fail(e));
        let result =
            default_mnist_dir().and_then(load_mnist).and_then(|m| bench_mpi(group.as_ref(), &m, &args));
        if let Err(e) = result {
            distributed::fail(e);
        }
        return;
    }
    if let Some(index) = args.first_epoch_child {
        let done = default_mnist_dir()
            .and_then(load_mnist)
            .and_then(|mnist| first_epoch_child(index, args.tuning_dir.clone(), &mnist));
        if let Err(e) = done {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let selection: AdapterSelection = match args.adapter.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let gpus = gpu::open(&selection, 1).unwrap_or_else(|e| {
        eprintln!("{e}");
        Vec::new()
    });
    if args.wants("matmul") {
        for gpu in &gpus {
            if let Err(e) = bench_gpu(gpu, &args) {
                eprintln!("{}: {e}", gpu.report.label());
            }
        }
        if !args.no_cpu {
            if let Err(e) = bench_cpu_matmul(&args) {
                eprintln!("cpu: {e}");
            }
        }
    }
    let needs_mnist = ["step", "train", "parallel", "first", "stream"];
    if !needs_mnist.iter().any(|s| args.wants(s)) {
        return;
    }
    let mnist = match default_mnist_dir().and_then(load_mnist) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if args.wants("step") {
        for gpu in &gpus {
            if let Err(e) = bench_step(gpu, &mnist, &args) {
                eprintln!("{}: {e}", gpu.report.label());
            }
        }
    }
    if args.wants("train") {
        for gpu in &gpus {
            let r = &gpu.report;
            let name = (r.name.as_str(), r.backend.as_str(), r.device_type.as_str());
            if let Err(e) = bench_train(Backend::Devices(vec![gpu.clone()]), name, &mnist, &args) {
                eprintln!("{}: {e}", r.label());
            }
        }
        if !args.no_cpu {
            if let Err(e) = bench_train(Backend::Cpu, ("cpu", "cpu", "cpu"), &mnist, &args) {
                eprintln!("cpu: {e}");
            }
        }
    }
    if args.wants("stream") {
        for gpu in &gpus {
            if let Err(e) = stream::bench_stream(gpu, &mnist, &args) {
                eprintln!("{}: {e}", gpu.report.label());
            }
        }
    }
    if args.wants("first") {
        for gpu in &gpus {
            if let Err(e) = bench_first_epoch(gpu, &args) {
                eprintln!("{}: {e}", gpu.report.label());
            }
        }
    }
    if args.wants("parallel") {
        // Logical devices on the first selected adapter.
        let first = gpus.first().map(|g| AdapterSelection::Indices(vec![g.report.index]));
        if let Some(sel) = first {
            if let Err(e) = bench_parallel(&sel, &mnist, &args) {
                eprintln!("parallel: {e}");
            }
        }
    }
}
