//! Timing the matmul variants that can run one product, for the autotuner: on scratch
//! operands of its shape, round-robin, pruning hopeless variants after one launch.

use std::time::Instant;

use super::matmul::{Matmul, MatmulCall, Packed, Variant};
use super::pipeline::Dispatch;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::MatmulForm;

/// Scratch operands of one shape, filled with small pseudo-random values.
struct Scratch {
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    c: wgpu::Buffer,
}

impl Scratch {
    fn new(gpu: &Gpu, m: usize, n: usize, k: usize) -> Result<Self> {
        let fill = |len: usize, seed: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 1000.0 - 0.5)
                .collect()
        };
        let usage = wgpu::BufferUsages::empty();
        Ok(Scratch {
            a: gpu.upload("tune A", &fill(m * k, 1), usage)?,
            b: gpu.upload("tune B", &fill(k * n, 2), usage)?,
            c: gpu.storage_buffer("tune C", (m * n * 4) as u64, usage)?,
        })
    }

    fn call(&self, form: MatmulForm, m: usize, n: usize, k: usize) -> MatmulCall<'_> {
        MatmulCall::plain(form, m, n, k, &self.a, &self.b, &self.c)
    }
}

/// Seconds for `reps` launches of `d` in one submission.
fn time(gpu: &Gpu, d: &Dispatch, reps: usize) -> Result<f64> {
    let all: Vec<&Dispatch> = std::iter::repeat_n(d, reps).collect();
    let start = Instant::now();
    super::pipeline::submit(gpu, &all);
    gpu.wait()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Timing rounds per surviving variant. The rounds go round-robin over the variants, so a
/// slow spell of a shared machine (seconds long on the 2-core VMs we measure on) hits every
/// variant alike instead of deciding the race.
const ROUNDS: usize = 5;

/// Seconds a first launch may spend compiling before its time counts against the variant.
const COMPILE_ALLOWANCE: f64 = 0.05;

/// What [`measure`] found for one shape.
pub(super) struct Measured {
    /// The fastest variant.
    pub winner: Variant,
    /// Seconds per product of each variant launched.
    pub timings: Vec<(Variant, f64)>,
    /// Variants pruned as hopeless.
    pub lost: Vec<Variant>,
}

/// Times every supporting variant on scratch data of `call`'s shape; returns the fastest,
/// every (variant, seconds per product) measured, and the variants pruned as hopeless.
/// Variants in `skip` are not launched unless nothing else can run the call.
pub(super) fn measure(
    gpu: &Gpu,
    matmul: &Matmul,
    call: &MatmulCall<'_>,
    a_packed: bool,
    skip: &[Variant],
) -> Result<Measured> {
    let (form, m, n, k) = (call.form, call.m, call.n, call.k);
    let scratch = Scratch::new(gpu, m, n, k)?;
    let probe = scratch.call(form, m, n, k);
    // A texture standing in for a pre-packed A (wgpu zero-fills it; the time does not depend
    // on the values).
    let packed = match (a_packed, probe.stored_inputs()) {
        (true, Some([a, _])) => matmul.operand_texture(gpu, a.rows, a.cols)?,
        _ => None,
    };
    let mut timings: Vec<(Variant, f64)> = Vec::new();
    // (variant, its dispatch, launches per timing, first timed launch, best seconds per product)
    let mut racing: Vec<(Variant, Dispatch, usize, f64, f64)> = Vec::new();
    let mut best = f64::INFINITY;
    // Variant::ALL lists usually-fast variants first, so the slow ones are pruned after one
    // launch instead of being timed in full (a naive 1000x64x784 product takes 0.1 s on lavapipe).
    let supported: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| matmul.supports(*v, call) && matmul.supports(*v, &probe))
        .collect();
    let candidates: Vec<Variant> = supported.iter().copied().filter(|v| !skip.contains(v)).collect();
    let candidates = if candidates.is_empty() { supported } else { candidates };
    // Drivers that compile when a pipeline is created do it for all candidates at once.
    matmul.build(gpu, &candidates)?;
    let mut lost = Vec::new();
    for v in candidates {
        let d = matmul.record_with(gpu, v, &probe, Packed::a(packed.as_ref()))?;
        // The first launch also pays for pipeline compilation in some drivers (lavapipe
        // compiles at first dispatch: 10-30 ms from Mesa's shader cache, up to 2.5 s
        // without it, which can prune a good variant; see shipped.rs): untimed, unless it alone shows the variant
        // is hopeless even after allowing for the compilation.
        let warm = time(gpu, &d, 1)?;
        if warm > 8.0 * best + COMPILE_ALLOWANCE {
            timings.push((v, warm));
            lost.push(v);
            continue;
        }
        let first = time(gpu, &d, 1)?;
        // Hopeless variants (4x slower than the best so far even with compilation removed)
        // are not timed again: on lavapipe a naive 1024^3 product takes seconds.
        if first > 4.0 * best {
            timings.push((v, first));
            lost.push(v);
            continue;
        }
        best = best.min(first);
        // Enough repetitions for ~2 ms of work, so timer and submission noise stay small.
        let reps = ((2e-3 / first.max(1e-6)) as usize).clamp(1, 32);
        racing.push((v, d, reps, first, f64::INFINITY));
    }
    // Variants that fell 4x behind a later, faster one are out of the race too.
    let (slow, mut racing): (Vec<_>, Vec<_>) = racing.into_iter().partition(|r| r.3 > 4.0 * best);
    timings.extend(slow.iter().map(|r| (r.0, r.3)));
    lost.extend(slow.iter().map(|r| r.0));
    for _ in 0..ROUNDS {
        for (_, d, reps, _, secs) in &mut racing {
            *secs = secs.min(time(gpu, d, *reps)? / *reps as f64);
        }
    }
    timings.extend(racing.iter().map(|r| (r.0, r.4)));
    let winner = racing
        .iter()
        .min_by(|x, y| x.4.total_cmp(&y.4))
        .map(|r| r.0)
        .or_else(|| timings.iter().min_by(|x, y| x.1.total_cmp(&y.1)).map(|t| t.0))
        .ok_or_else(|| {
            Error::Config(format!("no matmul variant supports {} m={m} n={n} k={k}", form.name()))
        })?;
    Ok(Measured { winner, timings, lost })
}
