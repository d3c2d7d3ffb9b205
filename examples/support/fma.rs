//! An FMA loop that touches no memory: the measure of a core's peak (`cpu_bench.rs`) and of
//! how a machine's speed spreads from call to call (`cpu_products.rs`).
//!
//! It keeps 12 independent accumulators (more than the FMA latency times the number of FMA
//! pipes), in the widest vectors this CPU has.

/// Independent accumulators.
const ACCUMULATORS: usize = 12;

/// FLOPs done by `iters` iterations of the widest FMA loop this CPU has.
pub fn fma_loop(iters: u64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            let sink = unsafe { fma_avx512(iters) };
            std::hint::black_box(sink);
            return (iters as usize * ACCUMULATORS * 16 * 2) as f64;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected just above.
            let sink = unsafe { fma_avx2(iters) };
            std::hint::black_box(sink);
            return (iters as usize * ACCUMULATORS * 8 * 2) as f64;
        }
    }
    // Scalar fallback: what the compiler makes of it.
    let mut acc = [1.0f32; ACCUMULATORS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    std::hint::black_box(acc);
    (iters as usize * ACCUMULATORS * 2) as f64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(1.0); ACCUMULATORS];
    let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, x, y);
        }
    }
    acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(1.0); ACCUMULATORS];
    let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm256_fmadd_ps(*a, x, y);
        }
    }
    let mut lanes = [0.0f32; 8];
    for a in acc {
        let mut v = [0.0f32; 8];
        // SAFETY: `v` holds 8 floats.
        unsafe { _mm256_storeu_ps(v.as_mut_ptr(), a) };
        for (l, v) in lanes.iter_mut().zip(v) {
            *l += v;
        }
    }
    lanes.iter().sum()
}
