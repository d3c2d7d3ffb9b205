//! Times training epochs of the CPU backend on MNIST-sized data, without loading anything:
//! 60 000 random 784-feature rows labelled by a fixed random linear "teacher" (so that the
//! model has something to learn), the 784-64-10 ReLU model, Adam, shuffled batches.
//!
//! `cargo run --release --example cpu_epoch` prints the median seconds per epoch over 3
//! epochs at batch 128 and at batch 32; `-- --dropout 0.2` puts dropout after the hidden
//! layer, to see what drawing its masks costs. An epoch's time includes the shuffle and the gather of
//! each batch's rows, as a real epoch loop pays them.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use wgtrain::cpu::{matmul, CpuMlp};
use wgtrain::{Activation, Init, MatmulForm, Network, Optimizer};

const ROWS: usize = 60_000;
const FEATURES: usize = 784;
const CLASSES: usize = 10;
const EPOCHS: usize = 3;

fn main() -> wgtrain::Result<()> {
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    let x: Vec<f32> = (0..ROWS * FEATURES).map(|_| rng.random::<f32>()).collect();
    // Labels: argmax of x T for a random T: [784, 10], so a linear model can reach ~100 %.
    let teacher: Vec<f32> = (0..FEATURES * CLASSES).map(|_| rng.random_range(-1.0..1.0)).collect();
    let scores = matmul(MatmulForm::AB, ROWS, CLASSES, FEATURES, &x, &teacher)?;
    let labels: Vec<u32> = scores
        .chunks_exact(CLASSES)
        .map(|s| (0..CLASSES).fold(0, |best, j| if s[j] > s[best] { j } else { best }) as u32)
        .collect();

    let args: Vec<String> = std::env::args().collect();
    let dropout =
        match args.iter().position(|a| a == "--dropout") {
            Some(i) => Some(args.get(i + 1).and_then(|r| r.parse::<f32>().ok()).ok_or_else(|| {
                wgtrain::Error::Config("--dropout needs a rate, such as --dropout 0.2".into())
            })?),
            None => None,
        };
    let spec = match dropout {
        Some(rate) => Network::new(FEATURES)
            .dense(64, Activation::Relu)
            .dropout(rate)
            .dense(CLASSES, Activation::Identity),
        None => Network::default(),
    };
    let with = dropout.map_or(String::new(), |r| format!(", dropout {r} after the hidden layer"));
    println!("CPU backend, 784-64-10 ReLU{with}, Adam lr 1e-3, {ROWS} rows, {EPOCHS} epochs per batch size");
    for batch in [128, 32] {
        let spec = spec.clone();
        let params = spec.layout().init(Init::He, 1);
        let mut model = CpuMlp::new(spec, params, Optimizer::adam(1e-3))?;
        let mut order: Vec<usize> = (0..ROWS).collect();
        let mut xb = vec![0.0f32; batch * FEATURES];
        let mut yb = vec![0u32; batch];
        let mut seconds = Vec::new();
        let mut last = (0.0, 0);
        for _ in 0..EPOCHS {
            let start = Instant::now();
            order.shuffle(&mut rng);
            // The epoch on one of rayon's threads: the model shares each step's work with the
            // pool's other threads, which is cheap from there (see `CpuMlp`'s docs).
            let (loss, correct) = rayon::scope(|_| -> wgtrain::Result<(f64, u32)> {
                let (mut loss, mut correct) = (0.0f64, 0u32);
                for idx in order.chunks(batch) {
                    let n = idx.len();
                    for (r, &i) in idx.iter().enumerate() {
                        xb[r * FEATURES..(r + 1) * FEATURES]
                            .copy_from_slice(&x[i * FEATURES..(i + 1) * FEATURES]);
                        yb[r] = labels[i];
                    }
                    let (l, c) = model.train_step(&xb[..n * FEATURES], &yb[..n])?;
                    loss += l as f64;
                    correct += c;
                }
                Ok((loss, correct))
            })?;
            seconds.push(start.elapsed().as_secs_f64());
            last = (loss / ROWS as f64, correct);
        }
        let per_epoch: Vec<String> = seconds.iter().map(|s| format!("{s:.3}")).collect();
        seconds.sort_by(f64::total_cmp);
        println!(
            "batch {batch:>3}: median {:.3} s/epoch ({:.0} samples/s; epochs {}), \
             last epoch loss {:.4}, train accuracy {:.1} %",
            seconds[EPOCHS / 2],
            ROWS as f64 / seconds[EPOCHS / 2],
            per_epoch.join(", "),
            last.0,
            100.0 * last.1 as f64 / ROWS as f64
        );
    }
    Ok(())
}
