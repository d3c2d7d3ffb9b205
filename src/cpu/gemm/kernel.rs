//! The micro-kernel of [`super::gemm`] and the walk over panels and blocks that drives it,
//! for each instruction set: a register block of `C` per call of [`block`], written once.

use super::super::simd::{load, store, Lanes};
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
    panels::<64>(job, (i0, i1), c, finish, S::WIDTH, |nv, blk| {
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
    panels::<16>(job, (i0, i1), c, finish, S::WIDTH, |nv, blk| {
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

/// The most rows of `B` one pass over a panel's row blocks reads: a 64-column panel's 128 rows
/// are 32 KB, which stay in L1 while every row block of the part multiplies them (a longer
/// `k` is cut into passes of at most this many rows, each adding to the sums the last one
/// stored).
const KC: usize = 128;

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
    /// Start from the sums in `C` (a later pass over `k`) rather than from zero.
    accumulate: bool,
}

/// `B` is packed only when it has more columns than this. Rows of a 64-column `B` lie 256 bytes
/// apart: a pass's (at most 128) rows of one 16-column AVX2 panel fall into 16 of a 32 KB,
/// 8-way L1's 64 sets, 128 lines, so they stay, and the copy cost a b32 epoch 9 % on a Zen 3
/// (paired, same run; neutral at b128). The AVX-512 panel is 64 columns wide, so this changes
/// nothing for it. No panel is wider, so a packed `B` always has more than one panel.
const PACK_WIDER_THAN: usize = 64;

/// Walks rows `i0..i1` in panels of up to `PANEL` columns (vectors of `width` lanes) and blocks
/// of the rows the kernel for the panel's vector count takes, calling `kernel(nv, block)` and
/// then `finish` on each block. The blocks it builds stay within the lengths `check` verified.
#[inline(always)]
fn panels<const PANEL: usize>(
    job: &Job<'_>,
    (i0, i1): (usize, usize),
    c: &mut [f32],
    finish: Finish<'_>,
    width: usize,
    kernel: impl Fn(usize, &Block) -> usize,
) {
    let (n, k) = (job.n, job.k);
    // Passes of equal length over k, none longer than KC.
    let kc = k.div_ceil(k.div_ceil(KC));
    // When B has more columns than PACK_WIDER_THAN (so more than a panel), its rows lie `n`
    // floats apart (4 KB in a 1024-wide layer), and rows that far apart fall into the same few
    // L1 sets, evicting each other before the next row block reads them again. So each pass's
    // rows of the panel are copied next to each other first (a copy: no bit changes), when
    // more than one row block will read them.
    const { assert!(PANEL <= PACK_WIDER_THAN, "a packed B must span more than one panel") };
    let mut walk = |mut packed: Option<&mut [f32]>| {
        for j0 in (0..n).step_by(PANEL) {
            let cols = PANEL.min(n - j0);
            let nv = cols.div_ceil(width);
            for p0 in (0..k).step_by(kc) {
                let rows_b = kc.min(k - p0);
                let (b, ldb) = match packed.as_deref_mut() {
                    Some(buf) => {
                        for (p, dst) in buf.chunks_exact_mut(PANEL).take(rows_b).enumerate() {
                            let src = (p0 + p) * n + j0;
                            if cols == PANEL {
                                // A copy of constant length, inlined (a call per row of 16
                                // floats cost more than the copying).
                                dst.copy_from_slice(&job.b[src..src + PANEL]);
                            } else {
                                dst[..cols].copy_from_slice(&job.b[src..src + cols]);
                            }
                        }
                        (buf.as_ptr(), PANEL)
                    }
                    None => (job.b.as_ptr().wrapping_add(p0 * n + j0), n),
                };
                pass(job, (i0, i1), c, &mut *finish, (j0, cols, nv), (p0, rows_b), (b, ldb), &kernel);
            }
        }
    };
    if n > PACK_WIDER_THAN && i1 - i0 > 12 {
        // On the stack, so that no step allocates, whichever thread packs: one pass of one
        // panel (32 KB for AVX-512, 8 KB for AVX2, whose zeroing is all that sizing it by the
        // panel saves: a fraction of a microsecond per product), its rows on cache lines.
        let mut buf = Pack([[0.0f32; PANEL]; KC]);
        walk(Some(&mut buf.0.as_flattened_mut()[..kc * PANEL]));
    } else {
        walk(None);
    }
}

/// A packing buffer of `KC` rows of a panel, on a cache line: its rows are whole lines (16 or
/// 64 floats), so no vector load of one straddles two (a `[f32]` array is only 4-byte aligned;
/// see `cpu/aligned.rs` for what a split access costs).
#[repr(C, align(64))]
struct Pack<const PANEL: usize>([[f32; PANEL]; KC]);

/// One pass over rows `p0..p0 + kc` of `k` for every row block of rows `i0..i1` in the panel
/// of columns `j0..j0 + cols` (`nv` vectors), `B`'s rows read from `b` at `ldb`; the bias and
/// `finish` after the last pass.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pass(
    job: &Job<'_>,
    (i0, i1): (usize, usize),
    c: &mut [f32],
    finish: Finish<'_>,
    (j0, cols, nv): (usize, usize, usize),
    (p0, kc): (usize, usize),
    (b, ldb): (*const f32, usize),
    kernel: &impl Fn(usize, &Block) -> usize,
) {
    let (n, a) = (job.n, job.a);
    let last = p0 + kc >= job.k;
    let mut i = i0;
    while i < i1 {
        let blk = Block {
            a: a.data.as_ptr().wrapping_add(i * a.rs + p0 * a.cs),
            a_rs: a.rs,
            a_cs: a.cs,
            b,
            ldb,
            // The bias is added to the whole sum, after the last pass.
            bias: match job.bias {
                Some(bias) if last => bias.as_ptr().wrapping_add(j0),
                _ => std::ptr::null(),
            },
            c: c.as_mut_ptr().wrapping_add((i - i0) * n + j0),
            ldc: n,
            rows: i1 - i,
            cols,
            k: kc,
            accumulate: p0 > 0,
        };
        let done = kernel(nv, &blk);
        if last {
            finish(c, i - i0, i - i0 + done, j0, j0 + cols);
        }
        i += done;
    }
}

/// One `MR x (NV * WIDTH)` block: `C = A B (+ bias)` for `min(rows, MR)` rows and `cols`
/// columns, or `C += A B` when `accumulate` (the sums continue from the stored ones: a stored
/// f32 reads back exactly, so every output is still one chain of FMAs in order of `p`);
/// returns the rows done. Rows past `rows` repeat the last row's loads (in bounds) and are
/// not stored; lanes past `cols` are neither loaded nor stored.
///
/// SAFETY (caller): the CPU has `S`'s features; rows `0..min(rows, MR)` of `A` are readable
/// for `p < k` at the strides given, `B`'s rows `0..k` and `bias` (when not null) for the
/// first `cols` columns, and `C`'s rows for `cols` columns are readable and writable.
#[inline(always)]
unsafe fn block<S: Lanes, const MR: usize, const NV: usize>(blk: &Block) -> usize {
    // SAFETY: the caller's contract, unchanged; a whole panel has every lane in bounds.
    unsafe {
        if blk.cols == NV * S::WIDTH {
            block_lanes::<S, MR, NV, true>(blk)
        } else {
            block_lanes::<S, MR, NV, false>(blk)
        }
    }
}

/// [`block`] with every vector whole (`FULL`: `cols == NV * WIDTH`, plain loads and stores) or
/// masked. The two load and store the same lanes, so they give the same bits.
///
/// SAFETY (caller): as [`block`]'s, and `cols == NV * S::WIDTH` when `FULL`.
#[inline(always)]
unsafe fn block_lanes<S: Lanes, const MR: usize, const NV: usize, const FULL: bool>(blk: &Block) -> usize {
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
    if blk.accumulate {
        for (r, row) in acc.iter_mut().enumerate().take(rows) {
            let crow = blk.c.wrapping_add(r * blk.ldc);
            for v in 0..NV {
                row[v] = load::<S, FULL>(crow.wrapping_add(v * S::WIDTH), masks[v]);
            }
        }
    }
    let mut bv = [S::zero(); NV];
    for p in 0..blk.k {
        let brow = blk.b.wrapping_add(p * blk.ldb);
        for v in 0..NV {
            bv[v] = load::<S, FULL>(brow.wrapping_add(v * S::WIDTH), masks[v]);
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
            let bias = load::<S, FULL>(blk.bias.wrapping_add(v * S::WIDTH), masks[v]);
            for row in acc.iter_mut() {
                row[v] = S::add(row[v], bias);
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(rows) {
        let crow = blk.c.wrapping_add(r * blk.ldc);
        for v in 0..NV {
            store::<S, FULL>(crow.wrapping_add(v * S::WIDTH), row[v], masks[v]);
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
