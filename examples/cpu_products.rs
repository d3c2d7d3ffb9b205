//! Times the CPU product kernel on one thread's share of the MNIST model's first layer (the
//! forward `A B`, 128 x 64 x 392, and the weight gradient `A^T B`, 392 x 64 x 128) and on a
//! product whose operands fit L1 (24 x 32 x 64), with the operands where a `Vec<f32>` may put
//! them (16 bytes past a cache line, as glibc's `malloc` does for blocks it maps) and on a cache
//! line, calls of the two interleaved so that both see the same moments of a busy machine.
//! Prints the spread of GFLOP/s per call: best, quartiles and median (see `src/cpu/aligned.rs`),
//! and the same for calls of an FMA loop that touches no memory and does as many FLOPs as the
//! MNIST products (`support/fma.rs`, `cpu_bench`'s peak loop), to tell the machine's spread
//! from the kernel's.
//! Both placements must give the same bits (checked before the spread is printed).
//!
//!     cargo run --release --example cpu_products [-- --calls 10000]

use std::time::Instant;

use clap::Parser;
use wgtrain::cpu::matmul_into;
use wgtrain::MatmulForm;

#[path = "support/fma.rs"]
mod fma;
use fma::fma_loop;

#[derive(Parser)]
struct Args {
    /// Calls of each product and placement (at least 1).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    calls: u32,
}

/// A buffer of `len` floats whose first one lies `offset` bytes past a 64-byte boundary.
struct Placed {
    storage: Vec<f32>,
    start: usize,
    len: usize,
}

impl Placed {
    fn new(values: &[f32], offset: usize) -> Self {
        let mut storage = vec![0.0f32; values.len() + 32];
        let base = storage.as_ptr() as usize;
        // The first float at or after `base` whose address is `offset` mod 64.
        let start = (0..16).find(|i| (base + i * 4) % 64 == offset).expect("an f32 Vec is 4-byte aligned");
        storage[start..start + values.len()].copy_from_slice(values);
        Placed { storage, start, len: values.len() }
    }

    fn get(&self) -> &[f32] {
        &self.storage[self.start..self.start + self.len]
    }

    fn get_mut(&mut self) -> &mut [f32] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

fn main() -> wgtrain::Result<()> {
    let args = Args::parse();
    let calls = args.calls as usize;
    let placements = [("16 B past a line", 16), ("on a line", 0)];
    println!("kernel: {}; {calls} calls of each, interleaved", wgtrain::cpu::matmul_kernel());
    let shapes =
        [(MatmulForm::AB, 128, 64, 392), (MatmulForm::AtB, 392, 64, 128), (MatmulForm::AB, 24, 32, 64)];
    for (form, m, n, k) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 251) as f32 / 251.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 241) as f32 / 241.0 - 0.5).collect();
        let mut operands: Vec<(Placed, Placed, Placed)> = placements
            .iter()
            .map(|&(_, at)| (Placed::new(&a, at), Placed::new(&b, at), Placed::new(&vec![0.0; m * n], at)))
            .collect();
        let mut seconds: Vec<Vec<f64>> = placements.iter().map(|_| Vec::with_capacity(calls)).collect();
        for _ in 0..calls {
            for ((a, b, c), times) in operands.iter_mut().zip(&mut seconds) {
                let t = Instant::now();
                matmul_into(form, m, n, k, a.get(), b.get(), c.get_mut())?;
                times.push(t.elapsed().as_secs_f64());
            }
        }
        // Where the operands lie must not change a bit of the product.
        let first: Vec<u32> = operands[0].2.get().iter().map(|c| c.to_bits()).collect();
        for (o, (name, _)) in operands.iter().zip(&placements) {
            let bits: Vec<u32> = o.2.get().iter().map(|c| c.to_bits()).collect();
            assert_eq!(bits, first, "{form:?} {m}x{n}x{k}: operands {name} gave other bits");
        }
        let flop = 2.0 * (m * n * k) as f64;
        for ((name, _), times) in placements.iter().zip(&mut seconds) {
            print_spread(&format!("{form:?} {m}x{n}x{k}, operands {name}"), flop, times);
        }
    }
    // The FMA loop with the 128 x 64 x 392 product's FLOPs a call (33 000 rounds of 12 8-lane
    // FMAs with AVX2).
    let rounds = (2.0 * (128 * 64 * 392) as f64 / fma_loop(1)).round() as u64;
    let mut times = Vec::with_capacity(calls);
    let mut flop = 0.0;
    for _ in 0..calls {
        let t = Instant::now();
        flop = fma_loop(std::hint::black_box(rounds));
        times.push(t.elapsed().as_secs_f64());
    }
    print_spread("FMA loop, no memory", flop, &mut times);
    Ok(())
}

/// Prints best, quartiles and median GFLOP/s of calls of `flop` that took `times` seconds.
fn print_spread(what: &str, flop: f64, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    // GFLOP/s of the call at quantile q of the times (q = 0: the fastest).
    let at = |q: f64| flop / times[((times.len() - 1) as f64 * q) as usize] / 1e9;
    println!(
        "{what:45}: best {:5.1}  quartile {:5.1}  median {:5.1}  quartile {:5.1} GFLOP/s",
        at(0.0),
        at(0.25),
        at(0.5),
        at(0.75)
    );
}
