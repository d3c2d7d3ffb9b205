//! Times each kernel of one training step on every selected adapter (timestamp queries
//! where the adapter has them, else wall clock per launch), to see where a step's time goes.
//!
//!     cargo run --release --example profile_step -- --batch 128

use std::sync::Arc;

use clap::Parser;
use wgtrain::data::{default_mnist_dir, load_mnist};
use wgtrain::gpu::device_data::{DeviceDataset, DeviceIndices};
use wgtrain::gpu::replica::Replica;
use wgtrain::gpu::{self, AdapterSelection};
use wgtrain::{Init, Network, Optimizer};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// all, best, vulkan, gl, or indices like 0,2.
    #[arg(long, default_value = "best")]
    adapter: String,
    #[arg(long, default_value_t = 50)]
    reps: usize,
}

fn main() -> Result<(), wgtrain::Error> {
    let args = Args::parse();
    let selection: AdapterSelection = args.adapter.parse()?;
    let mnist = load_mnist(default_mnist_dir()?)?;
    let spec = Network::default();
    let params = spec.layout().init(Init::He, 0);
    for gpu in gpu::open(&selection, 1)? {
        let label = gpu.report.label();
        let mut r = Replica::new(gpu.clone(), &spec, Optimizer::default(), &params, args.batch)?;
        let data = Arc::new(DeviceDataset::upload(&gpu, &mnist.train)?);
        let order: Vec<u32> = (0..mnist.train.len() as u32).collect();
        let src = r.add_source(data, DeviceIndices::upload(&gpu, &order, order.len())?)?;
        let profile = r.profile_train_step(src, args.batch, args.reps)?;
        println!(
            "{label}: {} launches, {:.3} ms of kernel time per step ({})",
            profile.kernels.len(),
            profile.total() * 1e3,
            profile.timer.name()
        );
        for (name, t) in profile.kernels {
            println!("  {name:<14} {:>8.3} ms", t * 1e3);
        }
        for rec in r.kernels.tuner.records() {
            let t: Vec<String> =
                rec.timings.iter().map(|(v, s)| format!("{}={:.3}ms", v.name(), s * 1e3)).collect();
            println!(
                "  tuned {} {}x{}x{} -> {}  [{}]",
                rec.form,
                rec.m,
                rec.n,
                rec.k,
                rec.variant.name(),
                t.join(" ")
            );
        }
    }
    Ok(())
}
