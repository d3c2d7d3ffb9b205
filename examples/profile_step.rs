//! Times each kernel of one training step on every selected adapter (timestamp queries
//! where the adapter has them, else wall clock per launch), to see where a step's time goes,
//! and prints the autotuner's decisions.
//!
//!     cargo run --release --example profile_step -- --batch 128 [--dropout 0.2] [--hidden 1024,1024]

use clap::Parser;
use wgtrain::data::{default_mnist_dir, load_mnist};
use wgtrain::gpu::profile::PreparedStep;
use wgtrain::gpu::{self, AdapterSelection};
use wgtrain::{Activation, Network};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// all, best, vulkan, gl, or indices like 0,2.
    #[arg(long, default_value = "best")]
    adapter: String,
    #[arg(long, default_value_t = 50)]
    reps: usize,
    /// Dropout after each hidden layer, at this rate (none when absent).
    #[arg(long)]
    dropout: Option<f32>,
    /// Hidden layer widths (ReLU): the demo's 64, or 1024,1024 for BENCHMARKS.md's wide model.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    hidden: Vec<usize>,
}

fn main() -> Result<(), wgtrain::Error> {
    let args = Args::parse();
    let selection: AdapterSelection = args.adapter.parse()?;
    let mnist = load_mnist(default_mnist_dir()?)?;
    for gpu in gpu::open(&selection, 1)? {
        let label = gpu.report.label();
        let mut spec = Network::new(784);
        for &width in &args.hidden {
            spec = spec.dense(width, Activation::Relu);
            if let Some(rate) = args.dropout {
                spec = spec.dropout(rate);
            }
        }
        let spec = spec.dense(10, Activation::Identity);
        let mut step = PreparedStep::new(&gpu, &spec, &mnist.train, args.batch)?;
        let profile = step.profile(args.reps)?;
        println!(
            "{label}: {} launches, {:.3} ms of kernel time per step ({})",
            profile.kernels.len(),
            profile.total() * 1e3,
            profile.timer.name()
        );
        for (name, t) in &profile.kernels {
            println!("  {name:<14} {:>8.3} ms", t * 1e3);
        }
        for line in step.tuning() {
            println!("  tuned {line}");
        }
    }
    Ok(())
}
