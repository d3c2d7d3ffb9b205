//! Adam(W) and SGD with momentum over flat buffers, in `f32`, matching the `adam` and `sgd`
//! entry points of `shaders/optim.wgsl` (and their vec4 forms in `shaders/optim_vec4.wgsl`). The per-step scalars (bias corrections included) come from
//! [`crate::Optimizer::step_scalars`], computed once in f64, so both backends see the same
//! rounded numbers.

use rayon::prelude::*;

use crate::error::Result;
use crate::spec::StepScalars;

use super::check_len;
use super::simd::Isa;
use super::threads::tasks;

/// Elements each thread must get before an update is split, on one of rayon's threads (see
/// `threads.rs`): the AVX-512 loop does the 50 890 parameters of the MNIST model in ~15 us on
/// one core, so the two halves of a split take ~8 us each after a hand-off of ~1 us.
const MIN_TASK: usize = 1 << 13;
/// The same from outside rayon's pool, where a split costs tens of microseconds. Measured on
/// a 2-core EPYC VM: 1M parameters take 440 us on one core and 320 us on two; 50 890 took
/// 15 us on one and 40-70 us on two when split from the trainer's own thread.
const MIN_TASK_OUTSIDE: usize = 1 << 19;

/// Elements per part when `len` elements are cut into one part per thread (a multiple of 16,
/// so that only the last part has a partial vector).
fn chunk_len(len: usize) -> usize {
    let parts = tasks(len, MIN_TASK, MIN_TASK_OUTSIDE);
    len.div_ceil(parts).next_multiple_of(16).max(16)
}

/// One Adam step on every element: `params`, `grads`, `m`, `v` all of the same length.
///
/// `p -= lr*wd*p` (only when `wd > 0`, decoupled AdamW decay, applied first);
/// `m = b1 m + (1-b1) g`; `v = b2 v + (1-b2) g^2`;
/// `p -= lr * (m * inv_bias1) / (sqrt(v * inv_bias2) + eps)`.
pub fn adam_step(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: &StepScalars,
) -> Result<()> {
    check_len("Adam gradients", grads.len(), params.len())?;
    check_len("Adam first moment m", m.len(), params.len())?;
    check_len("Adam second moment v", v.len(), params.len())?;
    let chunk = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| adam_here(p, g, m, v, s);
    let part = chunk_len(params.len());
    if part >= params.len() {
        chunk(params, grads, m, v);
    } else {
        params
            .par_chunks_mut(part)
            .zip(grads.par_chunks(part))
            .zip(m.par_chunks_mut(part))
            .zip(v.par_chunks_mut(part))
            .for_each(|(((p, g), m), v)| chunk(p, g, m, v));
    }
    Ok(())
}

/// One Adam step on the common length of the four buffers, on the calling thread: the
/// AVX-512 loop where the CPU has it, else the AVX2 one (on the instruction set the product
/// kernel uses, [`Isa::detect`]).
pub(super) fn adam_here(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found AVX-512F on this CPU.
        Isa::Avx512 => unsafe { adam_chunk_avx512(p, g, m, v, s) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `detect` found AVX2 (and FMA) on this CPU.
        Isa::Avx2Fma => unsafe { adam_chunk_avx2(p, g, m, v, s) },
        _ => adam_chunk(p, g, m, v, s),
    }
}

/// [`adam_chunk`] compiled for AVX-512: sqrt and division dominate the step, and 16 lanes do
/// them ~2.5 times faster than the baseline's 4. The results are bit for bit the same: the
/// loop is plain IEEE arithmetic (Rust never fuses a multiply and an add on its own, and sqrt
/// and division are correctly rounded at every width), only its vectors are wider.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn adam_chunk_avx512(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    adam_chunk(p, g, m, v, s)
}

/// [`adam_chunk`] compiled for AVX2, for the CPUs without AVX-512 (Zen 3, older Intel): 8
/// lanes of square root and division instead of the baseline's 4, the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn adam_chunk_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    adam_chunk(p, g, m, v, s)
}

/// The Adam formula over one chunk. The decay test is made once, not per element, so that
/// each loop body is branch-free and vectorises.
#[inline(always)]
fn adam_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    if s.weight_decay > 0.0 {
        adam_loop::<true>(p, g, m, v, s)
    } else {
        adam_loop::<false>(p, g, m, v, s)
    }
}

/// The per-element update; `DECAY` says whether `wd > 0`.
#[inline(always)]
fn adam_loop<const DECAY: bool>(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
    let (lr, b1, b2, eps, wd) = (s.lr, s.beta1, s.beta2, s.eps, s.weight_decay);
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        if DECAY {
            *p -= lr * wd * *p;
        }
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= lr * (*m * s.inv_bias1) / ((*v * s.inv_bias2).sqrt() + eps);
    }
}

/// One SGD step on the common length of the three buffers, on the calling thread.
pub(super) fn sgd_here(p: &mut [f32], g: &[f32], u: &mut [f32], s: &StepScalars) {
    let (lr, mu) = (s.lr, s.beta1);
    for ((p, &g), u) in p.iter_mut().zip(g).zip(u.iter_mut()) {
        *u = mu * *u + g;
        *p -= lr * *u;
    }
}

/// One SGD step with PyTorch's momentum on every element: `u = mu u + g`, `p -= lr u`, with
/// `mu = s.beta1` (plain SGD when 0, where `u` is then just `g`).
pub fn sgd_step(params: &mut [f32], grads: &[f32], u: &mut [f32], s: &StepScalars) -> Result<()> {
    check_len("SGD gradients", grads.len(), params.len())?;
    check_len("SGD momentum buffer", u.len(), params.len())?;
    let chunk = |p: &mut [f32], g: &[f32], u: &mut [f32]| sgd_here(p, g, u, s);
    let part = chunk_len(params.len());
    if part >= params.len() {
        chunk(params, grads, u);
    } else {
        params
            .par_chunks_mut(part)
            .zip(grads.par_chunks(part))
            .zip(u.par_chunks_mut(part))
            .for_each(|((p, g), u)| chunk(p, g, u));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{bits, test_values};

    /// The formula one element at a time, written out apart from the loops under test.
    fn adam_reference(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &StepScalars) {
        for i in 0..p.len() {
            if s.weight_decay > 0.0 {
                p[i] -= s.lr * s.weight_decay * p[i];
            }
            m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * g[i];
            v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * g[i] * g[i];
            let denom = (v[i] * s.inv_bias2).sqrt() + s.eps;
            p[i] -= s.lr * (m[i] * s.inv_bias1) / denom;
        }
    }

    /// Every loop this CPU can run (the baseline, AVX2, AVX-512) gives the reference's bits,
    /// with and without decay, on a length that leaves a partial vector at the end, for three
    /// steps (so that `m` and `v` carry over).
    #[test]
    fn every_adam_loop_gives_the_reference_bits() {
        type Loop = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], &StepScalars);
        let mut loops: Vec<(&str, Loop)> = vec![("baseline", adam_chunk)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: only called when the CPU has AVX2, checked just above.
                loops.push(("avx2", |p, g, m, v, s| unsafe { adam_chunk_avx2(p, g, m, v, s) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: only called when the CPU has AVX-512F, checked just above.
                loops.push(("avx512", |p, g, m, v, s| unsafe { adam_chunk_avx512(p, g, m, v, s) }));
            }
        }
        let len = 1000 + 13;
        for wd in [0.0, 0.01] {
            for (name, run) in &loops {
                let (mut p, mut m, mut v) = (test_values(len, 1), vec![0.0; len], vec![0.0; len]);
                let (mut pr, mut mr, mut vr) = (p.clone(), m.clone(), v.clone());
                for step in 1..=3 {
                    let s = StepScalars {
                        lr: 1e-3,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-7,
                        inv_bias1: 1.0 / (1.0 - 0.9f32.powi(step)),
                        inv_bias2: 1.0 / (1.0 - 0.999f32.powi(step)),
                        weight_decay: wd,
                    };
                    let g: Vec<f32> = test_values(len, 10 + step as u64).iter().map(|x| x * 0.5).collect();
                    run(&mut p, &g, &mut m, &mut v, &s);
                    adam_reference(&mut pr, &g, &mut mr, &mut vr, &s);
                    assert_eq!(bits(&p), bits(&pr), "{name} p, step {step}, wd {wd}");
                    assert_eq!(bits(&m), bits(&mr), "{name} m, step {step}, wd {wd}");
                    assert_eq!(bits(&v), bits(&vr), "{name} v, step {step}, wd {wd}");
                }
            }
        }
    }
}
