//! One thread or three must train the MNIST model to the same bits: its products, gathers and
//! optimizer updates are cut over the CPU backend's threads at batch 128 and in evaluation,
//! and none of those cuts may change a bit.
//!
//! The backend's thread pool is made once per process, as large as rayon's global pool then
//! is (`src/cpu/threads.rs`), so each thread count needs its own process: the test runs this
//! binary's [`child`] twice, with rayon's global pool built at one and at three threads, and
//! compares the bits each prints.

use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use wgtrain::cpu::CpuMlp;
use wgtrain::{Init, Network, Optimizer};

/// Tells [`child`] how many threads to train on; unset, it does nothing.
const THREADS_VAR: &str = "WGTRAIN_TEST_CPU_THREADS";

#[test]
fn training_on_three_threads_gives_the_bits_of_one() {
    let bits = |threads: usize| -> Vec<String> {
        let exe = std::env::current_exe().expect("the test binary's path");
        let out = Command::new(exe)
            .args(["child", "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
            .env(THREADS_VAR, threads.to_string())
            .output()
            .expect("run the test binary again");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the {threads}-thread run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<String> =
            stdout.lines().filter_map(|l| l.strip_prefix("BITS ")).map(str::to_owned).collect();
        assert!(lines.len() > 4, "the {threads}-thread run printed {} values:\n{stdout}", lines.len());
        assert!(
            stdout.contains(&format!("THREADS {threads}")),
            "the run did not train on {threads} threads:\n{stdout}"
        );
        lines
    };
    let (one, three) = (bits(1), bits(3));
    assert_eq!(one.len(), three.len(), "values printed");
    // The first four are the three steps' losses and the evaluation's; the rest the parameters.
    let diff = one.iter().zip(&three).position(|(a, b)| a != b);
    assert_eq!(diff, None, "the first value that differs (0-3: losses, then parameters)");
}

/// Trains on as many threads as [`THREADS_VAR`] says and prints the bits of the losses and of
/// every parameter; run by the test above, in a process of its own.
#[test]
#[ignore = "run by training_on_three_threads_gives_the_bits_of_one, in a process of its own"]
fn child() {
    let Some(threads) = std::env::var(THREADS_VAR).ok().and_then(|v| v.parse::<usize>().ok()) else {
        return;
    };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("rayon's global pool");
    println!("THREADS {}", rayon::current_num_threads());
    let mut rng = Pcg64Mcg::seed_from_u64(12);
    let x: Vec<f32> = (0..128 * 784).map(|_| rng.random_range(0.0..1.0)).collect();
    let labels: Vec<u32> = (0..128).map(|_| rng.random_range(0..10u32)).collect();
    let spec = Network::default();
    let params = spec.layout().init(Init::He, 4);
    let mut model = CpuMlp::new(spec, params, Optimizer::adam(1e-3)).unwrap();
    let mut out = String::new();
    for _ in 0..3 {
        out += &format!("BITS {:08x}\n", model.train_step(&x, &labels).unwrap().0.to_bits());
    }
    out += &format!("BITS {:08x}\n", model.evaluate(&x, &labels).unwrap().0.to_bits());
    for p in model.params() {
        out += &format!("BITS {:08x}\n", p.to_bits());
    }
    print!("{out}");
}
