//! The micro-kernel of [`super::gemm`] and the walk over panels and blocks that drives it,
//! for each instruction set: a register block of `C` per call of [`block`], written once.

use super::super::simd::Lanes;
use super::Job;

/// The epilogue's per-block callback: `(c, r0, r1, j0, j1)`, rows relative to the part.
pub(super) type Finish<'f> = &'f mut dyn FnMut(&mut [f32], usize, usize, usize, usize);

/// Rows `i0..i1` of the job with AVX-512F. SAFETY (caller): the CPU has AVX-512F and the
/// job's lengths passed `check`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn rows_avx512(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], finish: Finish<'_>) {
    use super::super::simd::Avx512 as S;
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

/// [`rows_avx512`] with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn rows_avx2(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], finish: Finish<'_>) {
    use super::super::simd::Avx2Fma as S;
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
pub(super) fn rows_portable(job: &Job<'_>, i0: usize, i1: usize, c: &mut [f32], finish: Finish<'_>) {
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
