//! The vector instructions the product kernel (`gemm.rs`) is written in, behind one small trait
//! ([`Lanes`]) with an AVX-512F and an AVX2+FMA implementation, and the run-time check of which
//! one this CPU has ([`Isa::detect`]).
//!
//! Every operation is lane-wise IEEE arithmetic: a fused multiply-add rounds once per lane
//! whatever the vector width, so both implementations compute each output element with the
//! same operations in the same order and give the same bits. Loads and stores take a lane
//! count: lanes at or past it are neither read nor written (masked), which is how a row whose
//! width is not a multiple of the vector width is handled without touching memory past it.

/// The instruction sets the product kernel has an implementation for, best first; the CPU
/// backend's other vector loops (Adam, the pixel conversion) pick theirs by it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// 16 lanes, 32 registers, masked loads and stores.
    Avx512,
    /// 8 lanes, 16 registers, `vmaskmov` loads and stores.
    Avx2Fma,
    /// Neither: the products fall back to `matrixmultiply`.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU supports, checked at run time (and cached by std).
    pub(super) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            // Every CPU with AVX-512F has AVX2 and FMA too, which loops written for those may
            // then use; checked all the same.
            let avx2_fma =
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
            if std::arch::is_x86_feature_detected!("avx512f") && avx2_fma {
                return Isa::Avx512;
            }
            if avx2_fma {
                return Isa::Avx2Fma;
            }
        }
        Isa::Portable
    }

    /// The name benchmarks report the products under.
    pub(super) fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Portable => "matrixmultiply",
        }
    }
}

/// A vector of `f32` lanes and the few operations the product kernel needs. Every function is
/// `unsafe`: it may only run on a CPU with the implementation's features (checked by
/// [`Isa::detect`] before any is called), and loads and stores take raw pointers whose first
/// `count` lanes must be valid.
pub(super) trait Lanes {
    /// Lanes per vector.
    const WIDTH: usize;
    /// The vector register type.
    type V: Copy;
    /// Which lanes a masked load or store touches.
    type Mask: Copy;

    /// The first `count` lanes (all of them when `count >= WIDTH`).
    unsafe fn mask(count: usize) -> Self::Mask;
    /// All lanes 0.0.
    unsafe fn zero() -> Self::V;
    /// `*p` in every lane.
    unsafe fn splat(p: *const f32) -> Self::V;
    /// Lanes of `m` from `p`, zero elsewhere; lanes outside `m` are not read.
    unsafe fn load(p: *const f32, m: Self::Mask) -> Self::V;
    /// Writes the lanes of `m` to `p`; lanes outside `m` are not written.
    unsafe fn store(p: *mut f32, v: Self::V, m: Self::Mask);
    /// All `WIDTH` lanes from `p`: [`Lanes::load`] with every lane selected, without the mask
    /// (AVX2's `vmaskmovps` costs more than a plain load, and far more as a store on AMD).
    unsafe fn load_all(p: *const f32) -> Self::V;
    /// Writes all `WIDTH` lanes to `p`: [`Lanes::store`] with every lane selected.
    unsafe fn store_all(p: *mut f32, v: Self::V);
    /// `a * b + c`, rounded once.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// Whether any lane is -0.0 (its bits, not its value: +0.0 is not).
    unsafe fn any_neg_zero(v: Self::V) -> bool;
}

/// [`Lanes::load`], or [`Lanes::load_all`] when `FULL` (a plain function, not a closure, so
/// that the intrinsics inline into the kernel that has the target features: the product's and the sparse product's).
///
/// SAFETY (caller): as [`Lanes::load`]'s, and every lane readable when `FULL`.
#[inline(always)]
pub(super) unsafe fn load<S: Lanes, const FULL: bool>(p: *const f32, m: S::Mask) -> S::V {
    // SAFETY: the caller's contract.
    unsafe {
        if FULL {
            S::load_all(p)
        } else {
            S::load(p, m)
        }
    }
}

/// [`Lanes::store`], or [`Lanes::store_all`] when `FULL`.
///
/// SAFETY (caller): as [`Lanes::store`]'s, and every lane writable when `FULL`.
#[inline(always)]
pub(super) unsafe fn store<S: Lanes, const FULL: bool>(p: *mut f32, v: S::V, m: S::Mask) {
    // SAFETY: the caller's contract.
    unsafe {
        if FULL {
            S::store_all(p, v)
        } else {
            S::store(p, v, m)
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2Fma, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Lanes;

    /// AVX-512F: 16 lanes with mask registers.
    pub(in crate::cpu) struct Avx512;

    impl Lanes for Avx512 {
        const WIDTH: usize = 16;
        type V = __m512;
        type Mask = __mmask16;

        #[inline(always)]
        unsafe fn mask(count: usize) -> __mmask16 {
            if count >= 16 {
                0xffff
            } else {
                ((1u32 << count) - 1) as __mmask16
            }
        }
        #[inline(always)]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> __m512 {
            _mm512_set1_ps(*p)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32, m: __mmask16) -> __m512 {
            _mm512_maskz_loadu_ps(m, p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512, m: __mmask16) {
            _mm512_mask_storeu_ps(p, m, v)
        }
        #[inline(always)]
        unsafe fn load_all(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store_all(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn any_neg_zero(v: __m512) -> bool {
            _mm512_cmpeq_epi32_mask(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MIN)) != 0
        }
    }

    /// AVX2 with FMA: 8 lanes; masks are vectors whose lanes' sign bits select.
    pub(in crate::cpu) struct Avx2Fma;

    impl Lanes for Avx2Fma {
        const WIDTH: usize = 8;
        type V = __m256;
        type Mask = __m256i;

        #[inline(always)]
        unsafe fn mask(count: usize) -> __m256i {
            // Lane l is selected when l < count: compare the lane indices with count.
            let c = count.min(8) as i32;
            _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
        }
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> __m256 {
            _mm256_broadcast_ss(&*p)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32, m: __m256i) -> __m256 {
            _mm256_maskload_ps(p, m)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256, m: __m256i) {
            _mm256_maskstore_ps(p, m, v)
        }
        #[inline(always)]
        unsafe fn load_all(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store_all(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn any_neg_zero(v: __m256) -> bool {
            let eq = _mm256_cmpeq_epi32(_mm256_castps_si256(v), _mm256_set1_epi32(i32::MIN));
            _mm256_movemask_epi8(eq) != 0
        }
    }
}
