//! The CPU's matrix product with the dense layer's epilogues fused, as the GPU's matmul kernels
//! do: `C = A B`, then (while the block is still in registers and L1) `+ bias` and the
//! activation, or `* act'(z)` for an input gradient.
//!
//! Shapes: `A(i, p) = a[i * a_rs + p * a_cs]` for `i < m, p < k` (any strides, so that `A`
//! and `A^T` are the same call), `B: [k, n]` row-major, `C: [m, n]` row-major. The weights are
//! already `[k, n]` row-major in the flat buffer, so the forward and the weight gradient read
//! both operands where they lie: nothing is packed or copied per step (the input gradient's
//! `W^T` is transposed once per step into a workspace buffer by the caller).
//!
//! The micro-kernel keeps an `MR x (NV * WIDTH)` block of `C` in registers (6 x 64 with
//! AVX-512) and, for each `p`, loads `NV` vectors of `B`'s row `p` and multiplies them by `MR`
//! broadcast elements of `A`'s column `p`. Every output is therefore
//! `fma(A(i, k-1), B(k-1, j), ... fma(A(i, 0), B(0, j), 0))`, one accumulator summed in order
//! of `p`, whatever the block shape, the vector width or the rows a thread was given: how the
//! product is cut up (over threads or blocks) never changes a bit, and AVX2 gives the bits of
//! AVX-512. CPUs with neither run `matrixmultiply`'s sgemm and the epilogue as separate loops
//! (other bits, same tolerances).
//!
//! Threads: `C`'s rows are cut into one block per rayon thread when each gets at least
//! [`MIN_TASK_MACS`] multiply-adds (on a rayon thread; see `threads.rs`); smaller products stay
//! on the calling thread.

use crate::error::{Error, Result};
use crate::spec::Activation;

use super::activation::{forward_span, scale_by_derivative};
use super::simd::{Isa, Lanes};
use super::threads::tasks;

/// Multiply-adds each thread must get before a product is split, on one of rayon's threads:
/// about 5 us of work, several times the cost of the hand-off there (see `threads.rs`). The
/// MNIST model's large products at batch 32 (32 x 64 x 784, 1.6M) are split in two; its
/// second layer (at most 128 x 64 x 10) is not.
const MIN_TASK_MACS: usize = 1 << 19;
/// The same from a thread outside rayon's pool, where a split costs tens of microseconds:
/// only large products (a 1024^3 product ran twice as fast on two threads).
const MIN_TASK_MACS_OUTSIDE: usize = 1 << 25;

/// `A(i, p) = data[i * rs + p * cs]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StridedA<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// What happens to each block of `C = A B` before it is stored.
#[derive(Debug)]
pub(super) enum Epilogue<'a> {
    /// `C` is the product.
    None,
    /// `C = A B + bias` (`bias: [n]`, added after the sum), and when `h` is given,
    /// `h = act(C)` (`h: [m, n]`): a dense layer's forward.
    Bias { bias: &'a [f32], act: Activation, h: Option<&'a mut [f32]> },
    /// `C = (A B) * act'(z)` (`z: [m, n]`): the input gradient of a dense layer, delivered as
    /// the pre-activation gradient of the layer below.
    ActGrad { act: Activation, z: &'a [f32] },
}

/// `C = A B` with `epilogue`, `c: [m, n]` overwritten (never read). Wrong lengths and zero
/// sizes are [`Error::Shape`]; nothing is written then.
pub(super) fn gemm(
    a: StridedA<'_>,
    b: &[f32],
    c: &mut [f32],
    mnk: (usize, usize, usize),
    epilogue: Epilogue<'_>,
) -> Result<()> {
    gemm_on(Isa::detect(), MIN_TASK_MACS, a, b, c, mnk, epilogue)
}

/// [`gemm`] for a part of a layer's work that already has a thread of its own (see
/// `cpu/layers/dense.rs`): split further only when each thread would get at least
/// `min_task_macs` multiply-adds.
pub(super) fn gemm_part(
    min_task_macs: usize,
    a: StridedA<'_>,
    b: &[f32],
    c: &mut [f32],
    mnk: (usize, usize, usize),
) -> Result<()> {
    gemm_on(Isa::detect(), min_task_macs, a, b, c, mnk, Epilogue::None)
}

/// [`gemm`] with the instruction set chosen by the caller (the tests run each one this CPU
/// has; `isa` must be supported by this CPU) and the least work per thread of a split.
fn gemm_on(
    isa: Isa,
    min_task_macs: usize,
    a: StridedA<'_>,
    b: &[f32],
    c: &mut [f32],
    (m, n, k): (usize, usize, usize),
    epilogue: Epilogue<'_>,
) -> Result<()> {
    check(a, b, c, (m, n, k), &epilogue)?;
    let macs = m.saturating_mul(n).saturating_mul(k);
    let tasks = tasks(macs, min_task_macs, MIN_TASK_MACS_OUTSIDE.max(min_task_macs)).min(m);
    let (bias, act, h, z) = match epilogue {
        Epilogue::None => (None, None, None, None),
        Epilogue::Bias { bias, act, h } => (Some(bias), h.as_ref().map(|_| act), h, None),
        Epilogue::ActGrad { act, z } => (None, Some(act), None, Some(z)),
    };
    let job = Job { isa, a, b, n, k, bias, act, z };
    // Parts of whole 6-row blocks (the 64-column kernel's), so that only the last is partial.
    split_rows(&job, 0, m, m.div_ceil(tasks).next_multiple_of(6), c, h);
    Ok(())
}

/// Everything a block of rows needs besides its own output slices.
struct Job<'a> {
    isa: Isa,
    a: StridedA<'a>,
    b: &'a [f32],
    n: usize,
    k: usize,
    bias: Option<&'a [f32]>,
    /// The activation of the forward (`h` given) or of the act-grad epilogue (`z` given).
    act: Option<Activation>,
    z: Option<&'a [f32]>,
}

/// Rows `i0..i1` of `C` (and of `h`), cut in halves on rayon until a part has at most `chunk`
/// rows; `c` and `h` hold exactly those rows.
fn split_rows(job: &Job<'_>, i0: usize, i1: usize, chunk: usize, c: &mut [f32], h: Option<&mut [f32]>) {
    let rows = i1 - i0;
    if rows <= chunk {
        run_rows(job, i0, i1, c, h);
        return;
    }
    // Cut at a multiple of `chunk` so that the parts are the chunks the count asked for.
    let mid = i0 + rows.div_ceil(chunk) / 2 * chunk;
    let (c_lo, c_hi) = c.split_at_mut((mid - i0) * job.n);
    let (h_lo, h_hi) = match h {
        Some(h) => {
            let (lo, hi) = h.split_at_mut((mid - i0) * job.n);
            (Some(lo), Some(hi))
        }
        None => (None, None),
    };
    rayon::join(
        || split_rows(job, i0, mid, chunk, c_lo, h_lo),
        || split_rows(job, mid, i1, chunk, c_hi, h_hi),
    );
}

/// Rows `i0..i1` on this thread: the product with the bias, then each finished block's
/// scalar epilogue (activation or its derivative) while it is in L1.
fn run_rows(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], mut h: Option<&mut [f32]>) {
    let n = job.n;
    // The activation pass of rows r0..r1 (relative to i0) and columns j0..j1: the loops of
    // `activation_forward_into` and `activation_backward_into`, so the same bits.
    let mut finish = |c: &mut [f32], r0: usize, r1: usize, j0: usize, j1: usize| {
        for r in r0..r1 {
            let span = r * n + j0..r * n + j1;
            match (job.act, h.as_deref_mut(), job.z) {
                (Some(act), Some(h), _) => forward_span(&c[span.clone()], act, &mut h[span]),
                (Some(act), None, Some(z)) => {
                    scale_by_derivative(&mut c[span], &z[(i0 + r) * n + j0..(i0 + r) * n + j1], act)
                }
                _ => {}
            }
        }
    };
    match job.isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `job.isa` is supported by this CPU (`detect` found it, or a test checked);
        // `gemm_on` checked every length (see `check`), which is what the blocks rely on.
        Isa::Avx512 => unsafe { rows_avx512(job, i0, i1, c, &mut finish) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, with AVX2 and FMA.
        Isa::Avx2Fma => unsafe { rows_avx2(job, i0, i1, c, &mut finish) },
        _ => rows_portable(job, i0, i1, c, &mut finish),
    }
}

/// The epilogue's per-block callback: `(c, r0, r1, j0, j1)`, rows relative to the part.
type Finish<'f> = &'f mut dyn FnMut(&mut [f32], usize, usize, usize, usize);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], finish: Finish<'_>) {
    use super::simd::Avx512 as S;
    // Panels of up to 4 vectors (64 columns); the row count of a block keeps MR * NV
    // accumulators, NV vectors of B and a broadcast within the 32 registers.
    panels(job, (i0, i1), c, finish, S::WIDTH, 4, |nv, blk| {
        // SAFETY: AVX-512F is enabled here; `panels` builds blocks within the checked lengths.
        unsafe {
            match nv {
                4 => block::<S, 6, 4>(blk),
                3 => block::<S, 8, 3>(blk),
                2 => block::<S, 12, 2>(blk),
                _ => block::<S, 14, 1>(blk),
            }
        }
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], finish: Finish<'_>) {
    use super::simd::Avx2Fma as S;
    // 16 registers: 6 x 2 accumulators + 2 + 1, or 12 x 1 + 1 + 1.
    panels(job, (i0, i1), c, finish, S::WIDTH, 2, |nv, blk| {
        // SAFETY: AVX2 and FMA are enabled here; `panels` builds blocks within the checked
        // lengths.
        unsafe {
            match nv {
                2 => block::<S, 6, 2>(blk),
                _ => block::<S, 12, 1>(blk),
            }
        }
    })
}

/// Where one block reads and writes; see [`block`].
struct Block {
    /// `A(i0, 0)`, then rows at `a_rs`, columns at `a_cs`.
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    /// `B(0, j0)`, rows at `ldb`.
    b: *const f32,
    ldb: usize,
    /// `bias[j0]`, or null for none.
    bias: *const f32,
    /// `C(i0, j0)`, rows at `ldc`.
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    k: usize,
}

/// Walks rows `i0..i1` in panels of up to `max_nv` vectors of `width` lanes and blocks of the
/// rows the kernel for the panel's vector count takes, calling `kernel(nv, block)` and then
/// `finish` on each block. The blocks it builds stay within the lengths `check` verified.
#[inline(always)]
fn panels(
    job: &Job<'_>,
    (i0, i1): (usize, usize),
    c: &mut [f32],
    finish: Finish<'_>,
    width: usize,
    max_nv: usize,
    kernel: impl Fn(usize, &Block) -> usize,
) {
    let (n, k, a) = (job.n, job.k, job.a);
    let panel = width * max_nv;
    for j0 in (0..n).step_by(panel) {
        let cols = panel.min(n - j0);
        let nv = cols.div_ceil(width);
        let mut i = i0;
        while i < i1 {
            let blk = Block {
                a: a.data.as_ptr().wrapping_add(i * a.rs),
                a_rs: a.rs,
                a_cs: a.cs,
                b: job.b.as_ptr().wrapping_add(j0),
                ldb: n,
                bias: job.bias.map_or(std::ptr::null(), |b| b.as_ptr().wrapping_add(j0)),
                c: c.as_mut_ptr().wrapping_add((i - i0) * n + j0),
                ldc: n,
                rows: i1 - i,
                cols,
                k,
            };
            let done = kernel(nv, &blk);
            finish(c, i - i0, i - i0 + done, j0, j0 + cols);
            i += done;
        }
    }
}

/// One `MR x (NV * WIDTH)` block: `C = A B (+ bias)` for `min(rows, MR)` rows and `cols`
/// columns; returns the rows done. Rows past `rows` repeat the last row's loads (in bounds)
/// and are not stored; lanes past `cols` are neither loaded nor stored.
///
/// SAFETY (caller): the CPU has `S`'s features; rows `0..min(rows, MR)` of `A` are readable
/// for `p < k` at the strides given, `B`'s rows `0..k` and `bias` (when not null) for the
/// first `cols` columns, and `C`'s rows for `cols` columns are writable.
#[inline(always)]
unsafe fn block<S: Lanes, const MR: usize, const NV: usize>(blk: &Block) -> usize {
    let rows = blk.rows.min(MR);
    // Plain loops rather than array::from_fn: the intrinsics must inline into this function
    // (which has the target features), not into a closure of its own.
    let mut masks = [S::mask(0); NV];
    for (v, m) in masks.iter_mut().enumerate() {
        *m = S::mask(blk.cols.saturating_sub(v * S::WIDTH));
    }
    let mut arow = [blk.a; MR];
    for (r, a) in arow.iter_mut().enumerate() {
        *a = blk.a.wrapping_add(r.min(rows - 1) * blk.a_rs);
    }
    let mut acc = [[S::zero(); NV]; MR];
    let mut bv = [S::zero(); NV];
    for p in 0..blk.k {
        let brow = blk.b.wrapping_add(p * blk.ldb);
        for v in 0..NV {
            bv[v] = S::load(brow.wrapping_add(v * S::WIDTH), masks[v]);
        }
        for r in 0..MR {
            let x = S::splat(arow[r].wrapping_add(p * blk.a_cs));
            for v in 0..NV {
                acc[r][v] = S::fma(x, bv[v], acc[r][v]);
            }
        }
    }
    if !blk.bias.is_null() {
        for v in 0..NV {
            let bias = S::load(blk.bias.wrapping_add(v * S::WIDTH), masks[v]);
            for row in acc.iter_mut() {
                row[v] = S::add(row[v], bias);
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(rows) {
        let crow = blk.c.wrapping_add(r * blk.ldc);
        for v in 0..NV {
            S::store(crow.wrapping_add(v * S::WIDTH), row[v], masks[v]);
        }
    }
    rows
}

/// Without AVX2: `matrixmultiply`'s sgemm for rows `i0..i1`, the bias, then the epilogue.
fn rows_portable(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], finish: Finish<'_>) {
    let (n, k, a) = (job.n, job.k, job.a);
    let rows = i1 - i0;
    // SAFETY: `check` verified that A's rows i0..i1 (read from a[i0 * rs..]) and B: [k, n]
    // lie within their slices and that c holds rows * n floats; beta = 0 means C is written
    // without being read. Strides are below isize::MAX because they index into slices.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            k,
            n,
            1.0,
            a.data.as_ptr().add(i0 * a.rs),
            a.rs as isize,
            a.cs as isize,
            job.b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    if let Some(bias) = job.bias {
        for row in c.chunks_exact_mut(n) {
            for (z, &b) in row.iter_mut().zip(bias) {
                *z += b;
            }
        }
    }
    finish(c, 0, rows, 0, n);
}

/// The lengths every pointer in this file relies on.
fn check(
    a: StridedA<'_>,
    b: &[f32],
    c: &[f32],
    (m, n, k): (usize, usize, usize),
    e: &Epilogue<'_>,
) -> Result<()> {
    let shape = |what: &str| Error::Shape(format!("product of [{m}, {k}] x [{k}, {n}]: {what}"));
    if m == 0 || n == 0 || k == 0 {
        return Err(shape("a zero size"));
    }
    let mn = m.checked_mul(n).ok_or_else(|| shape("C overflows usize"))?;
    let kn = k.checked_mul(n).ok_or_else(|| shape("B overflows usize"))?;
    let a_last = (m - 1)
        .checked_mul(a.rs)
        .and_then(|x| (k - 1).checked_mul(a.cs).and_then(|y| x.checked_add(y)))
        .ok_or_else(|| shape("A's strides overflow usize"))?;
    if a_last >= a.data.len() {
        return Err(shape(&format!("A holds {} values, its last is at {a_last}", a.data.len())));
    }
    if b.len() != kn {
        return Err(shape(&format!("B holds {} values, expected {kn}", b.len())));
    }
    if c.len() != mn {
        return Err(shape(&format!("C holds {} values, expected {mn}", c.len())));
    }
    let (bias, side) = match e {
        Epilogue::None => (None, None),
        Epilogue::Bias { bias, h, .. } => (Some(bias.len()), h.as_ref().map(|h| h.len())),
        Epilogue::ActGrad { z, .. } => (None, Some(z.len())),
    };
    if bias.is_some_and(|len| len != n) {
        return Err(shape(&format!("the bias holds {} values, expected {n}", bias.unwrap_or(0))));
    }
    if side.is_some_and(|len| len != mn) {
        return Err(shape(&format!(
            "the epilogue's tensor holds {} values, expected {mn}",
            side.unwrap_or(0)
        )));
    }
    Ok(())
}

/// `dst = src^T`: `src: [rows, cols]`, `dst: [cols, rows]`, both row-major. In 8 x 8 tiles so
/// that both sides touch few cache lines at a time.
pub(super) fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) -> Result<()> {
    if src.len() != rows * cols || dst.len() != rows * cols {
        return Err(Error::Shape(format!(
            "transpose of [{rows}, {cols}] from {} into {} values",
            src.len(),
            dst.len()
        )));
    }
    const T: usize = 8;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{activation_backward, activation_forward, add_bias};

    /// Every instruction set this CPU can run, best first; the portable one always.
    fn isas() -> Vec<Isa> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2Fma);
            }
        }
        all.push(Isa::Portable);
        all
    }

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Shapes around the block sizes (6, 8, 12, 14 rows; 16-lane vectors; 64-column panels).
    const SHAPES: [(usize, usize, usize); 9] = [
        (1, 1, 1),
        (5, 17, 3),
        (13, 63, 100),
        (29, 65, 7),
        (7, 130, 33),
        (6, 64, 784),
        (14, 16, 9),
        (15, 10, 64),
        (40, 33, 2),
    ];

    /// `A` as `[m, k]` (`transposed` false) or `[k, m]` read through its strides.
    fn operand(a: &[f32], m: usize, k: usize, transposed: bool) -> StridedA<'_> {
        if transposed {
            StridedA { data: a, rs: 1, cs: m }
        } else {
            StridedA { data: a, rs: k, cs: 1 }
        }
    }

    #[test]
    fn every_isa_matches_f64_in_both_layouts_of_a() {
        let u = f64::powi(2.0, -24);
        for isa in isas() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                for transposed in [false, true] {
                    let (a, b) = (values(m * k, s as u64), values(k * n, 100 + s as u64));
                    let sa = operand(&a, m, k, transposed);
                    let mut c = vec![f32::NAN; m * n];
                    gemm_on(isa, MIN_TASK_MACS, sa, &b, &mut c, (m, n, k), Epilogue::None).expect("gemm");
                    for i in 0..m {
                        for j in 0..n {
                            let terms: Vec<f64> = (0..k)
                                .map(|p| a[i * sa.rs + p * sa.cs] as f64 * b[p * n + j] as f64)
                                .collect();
                            let exact: f64 = terms.iter().sum();
                            // The k-term dot product bound of tests/matmul.rs: (2k + 1) u sum |a b|.
                            let tol = (2 * k + 1) as f64 * u * terms.iter().map(|t| t.abs()).sum::<f64>();
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - exact).abs() <= tol,
                                "{isa:?} [{m}, {n}, {k}] transposed {transposed}: C[{i}, {j}] = {got}, exact {exact}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn avx2_gives_the_bits_of_avx512() {
        let vector: Vec<Isa> = isas().into_iter().filter(|&i| i != Isa::Portable).collect();
        if vector.len() < 2 {
            return; // One vector instruction set on this CPU: nothing to compare.
        }
        for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
            let (a, b) = (values(m * k, s as u64), values(k * n, 7 + s as u64));
            let run = |isa| {
                let mut c = vec![0.0; m * n];
                gemm_on(isa, MIN_TASK_MACS, operand(&a, m, k, false), &b, &mut c, (m, n, k), Epilogue::None)
                    .expect("gemm");
                c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(run(vector[0]), run(vector[1]), "[{m}, {n}, {k}]");
        }
    }

    /// The fused epilogues compute what the separate ops do, bit for bit: `add_bias` then
    /// `activation_forward`, and `activation_backward` of the product.
    #[test]
    fn fused_epilogues_give_the_bits_of_separate_ops() {
        for isa in isas() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                let (a, b) = (values(m * k, s as u64), values(k * n, 50 + s as u64));
                let (bias, z) = (values(n, 9 + s as u64), values(m * n, 80 + s as u64));
                let mut plain = vec![0.0; m * n];
                gemm_on(
                    isa,
                    MIN_TASK_MACS,
                    operand(&a, m, k, false),
                    &b,
                    &mut plain,
                    (m, n, k),
                    Epilogue::None,
                )
                .expect("gemm");
                for act in Activation::ALL {
                    let mut want_z = plain.clone();
                    add_bias(&mut want_z, &bias).expect("bias");
                    let want_h = activation_forward(&want_z, act);
                    let (mut got_z, mut got_h) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                    let epilogue = Epilogue::Bias { bias: &bias, act, h: Some(&mut got_h) };
                    gemm_on(
                        isa,
                        MIN_TASK_MACS,
                        operand(&a, m, k, false),
                        &b,
                        &mut got_z,
                        (m, n, k),
                        epilogue,
                    )
                    .expect("gemm");
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got_z), bits(&want_z), "{isa:?} {act:?} [{m}, {n}, {k}]: z");
                    assert_eq!(bits(&got_h), bits(&want_h), "{isa:?} {act:?} [{m}, {n}, {k}]: h");

                    let want_dz = activation_backward(&plain, &z, act).expect("backward");
                    let mut got_dz = vec![f32::NAN; m * n];
                    let epilogue = Epilogue::ActGrad { act, z: &z };
                    gemm_on(
                        isa,
                        MIN_TASK_MACS,
                        operand(&a, m, k, false),
                        &b,
                        &mut got_dz,
                        (m, n, k),
                        epilogue,
                    )
                    .expect("gemm");
                    assert_eq!(bits(&got_dz), bits(&want_dz), "{isa:?} {act:?} [{m}, {n}, {k}]: dz");
                }
            }
        }
    }

    /// Rows cut over three threads (an uneven split) give one thread's bits, epilogue included.
    #[test]
    fn a_split_over_threads_gives_the_bits_of_one_thread() {
        let (m, n, k) = (301, 70, 90);
        let (a, b, bias) = (values(m * k, 1), values(k * n, 2), values(n, 3));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
            pool.install(|| {
                let (mut z, mut h) = (vec![0.0; m * n], vec![0.0; m * n]);
                let epilogue = Epilogue::Bias { bias: &bias, act: Activation::Gelu, h: Some(&mut h) };
                gemm(operand(&a, m, k, true), &b, &mut z, (m, n, k), epilogue).expect("gemm");
                z.iter().chain(&h).map(|v| v.to_bits()).collect::<Vec<_>>()
            })
        };
        assert!(m * n * k / MIN_TASK_MACS >= 3, "the product must be large enough to be split in three");
        assert_eq!(run(3), run(1));
    }

    #[test]
    fn bad_lengths_are_errors_and_write_nothing() {
        let (a, b, bias) = (vec![1.0; 12], vec![1.0; 8], vec![0.0; 2]);
        let sa = StridedA { data: &a, rs: 3, cs: 1 };
        // Each row: why it must fail, m, n, k, B's length, C's length, bias length.
        let table = [
            ("m = 0", 0, 2, 3, 6, 0, 2),
            ("k = 0", 4, 2, 0, 0, 8, 2),
            ("A too short for m = 5", 5, 2, 3, 6, 10, 2),
            ("B one short", 4, 2, 3, 5, 8, 2),
            ("C one long", 4, 2, 3, 6, 9, 2),
            ("bias one short", 4, 2, 3, 6, 8, 1),
        ];
        for (why, m, n, k, b_len, c_len, bias_len) in table {
            let mut c = vec![7.0; c_len];
            let epilogue = Epilogue::Bias { bias: &bias[..bias_len], act: Activation::Relu, h: None };
            let r = gemm(sa, &b[..b_len], &mut c, (m, n, k), epilogue);
            assert!(matches!(r, Err(Error::Shape(_))), "{why}: {r:?}");
            assert!(c.iter().all(|&v| v == 7.0), "{why}: C was written");
        }
        let mut c = vec![0.0; 8];
        let z = vec![0.0; 7];
        let r = gemm(sa, &b[..6], &mut c, (4, 2, 3), Epilogue::ActGrad { act: Activation::Tanh, z: &z });
        assert!(matches!(r, Err(Error::Shape(_))), "z one short: {r:?}");
    }

    #[test]
    fn transpose_moves_every_element() {
        let (rows, cols) = (13, 21);
        let src = values(rows * cols, 4);
        let mut dst = vec![0.0; rows * cols];
        transpose_into(&src, rows, cols, &mut dst).expect("transpose");
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(dst[c * rows + r], src[r * cols + c], "[{r}, {c}]");
            }
        }
        assert!(transpose_into(&src, rows, cols, &mut dst[1..]).is_err(), "a short destination");
    }
}
