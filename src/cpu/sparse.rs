//! A batch's input columns as their nonzeros, and the product of such a sparse matrix with a
//! dense one with the bits of the dense product: the first layer's forward and weight
//! gradient on data that is mostly zeros (about 81 % of MNIST's pixels are 0), which skip the
//! zero inputs' multiply-adds instead of computing them.
//!
//! Why the bits are the dense product's: `gemm` computes every output as one chain of FMAs
//! from +0 in order of `p`, `acc = fma(a_p, b_p, acc)` (`cpu/gemm/mod.rs`). Take two chains
//! over the same terms, the dense one with and the sparse one without the terms whose `a_p`
//! is +0 (only +0: a -0 is kept as a nonzero). With `b_p` finite, such a term adds a zero
//! (`+0 * b_p`, of `b_p`'s sign), which leaves a nonzero `acc` as it is, leaves +0 as +0, and
//! leaves -0 as -0 or turns it into +0 (`-0 + +0 = +0`, round-to-nearest; also where the
//! backend's threads flush subnormals to zero, which both chains see alike). Term by term, the two accumulators are therefore either equal or the
//! dense one +0 and the sparse one -0; from the latter a shared term `fma(a, b, ±0)` gives the
//! same value unless `a b` is exactly zero, and then again equal values or (+0, -0). So every
//! output but a -0 has the dense product's bits, and [`product`] recomputes each output it
//! finds to be -0 with the whole chain, zeros included (a -0 sum needs every term so far to
//! be zero or to have underflowed: with trained weights it does not happen, but the bits do
//! not depend on that). When `B` holds an infinity or a NaN, a skipped `0 * inf` would have
//! been a NaN, so every output is computed with the whole chain then (a diverged model: slow
//! but the same values; a NaN is a NaN in both, though which NaN's payload an FMA passes on
//! may differ between the kernels' instruction forms). The whole chains run inside the
//! kernels' functions, so their FMAs are the dense product's instruction in the same
//! floating-point mode.
//!
//! How much it saves: the product does one multiply-add per nonzero instead of one per
//! input, for each output; it reads a row of `B` per nonzero (from L2 for the forward's
//! weights), so it pays only below about half of the inputs nonzero, and the executor gathers
//! a batch as nonzeros only then ([`Nonzeros::sparse_enough`]).

use crate::error::{Error, Result};

#[cfg(target_arch = "x86_64")]
use super::gather::pixels_by_fma;
use super::simd::{load, store, Isa, Lanes};

/// A batch is kept as its nonzeros when at most this fraction of its inputs is nonzero.
const MAX_DENSITY: f64 = 0.5;
/// Columns of `C` per block of the product: 64 floats, one block of accumulators in
/// registers (8 AVX2 or 4 AVX-512 vectors), reused for every nonzero of a row.
const BLOCK: usize = 64;

/// The rows of a sparse matrix `A: [rows, cols]` by their nonzeros (compressed sparse rows):
/// row `i`'s entries are `index[t]`, `value[t]` for `t` in `starts[i]..starts[i + 1]`, with
/// indices increasing within a row and below `cols`. Made only by [`Nonzeros`] and sliced
/// by [`Csr::slice_rows`], which keep these invariants, so the product relies on them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Csr<'a> {
    starts: &'a [u32],
    index: &'a [u32],
    value: &'a [f32],
    cols: usize,
}

impl<'a> Csr<'a> {
    /// The matrix's rows.
    pub(crate) fn rows(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The matrix's columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Rows `first..first + count`, or `None` past the last row.
    pub(crate) fn slice_rows(self, first: usize, count: usize) -> Option<Csr<'a>> {
        let starts = self.starts.get(first..first.checked_add(count)?.checked_add(1)?)?;
        Some(Csr { starts, ..self })
    }

    /// The first `rows` rows and the others, or `None` past the last row.
    pub(crate) fn split_rows(self, rows: usize) -> Option<(Csr<'a>, Csr<'a>)> {
        Some((self.slice_rows(0, rows)?, self.slice_rows(rows, self.rows().checked_sub(rows)?)?))
    }

    /// The matrix's entries.
    pub(crate) fn nnz(&self) -> usize {
        match (self.starts.first(), self.starts.last()) {
            (Some(&first), Some(&last)) => (last - first) as usize,
            _ => 0,
        }
    }

    /// How many leading rows hold at most `entries` entries between them.
    pub(crate) fn rows_within(&self, entries: usize) -> usize {
        let first = self.starts.first().map_or(0, |&s| s as usize);
        // `starts` increases, so the rows whose end is within `entries` come first.
        self.starts.get(1..).map_or(0, |ends| ends.partition_point(|&end| end as usize - first <= entries))
    }

    /// Writes the matrix densely into the first `rows * cols` floats of `x`, zeros where no
    /// entry is: the values the entries were gathered from, bit for bit (only +0 is left out).
    pub(crate) fn scatter_into(&self, x: &mut [f32]) {
        for (r, x) in x.chunks_exact_mut(self.cols).take(self.rows()).enumerate() {
            x.fill(0.0);
            let (index, value) = self.row(r);
            for (&c, &v) in index.iter().zip(value) {
                x[c as usize] = v;
            }
        }
    }

    /// Row `i`'s column indices and values.
    fn row(&self, i: usize) -> (&'a [u32], &'a [f32]) {
        let span = self.starts[i] as usize..self.starts[i + 1] as usize;
        (&self.index[span.clone()], &self.value[span])
    }
}

/// One column block of a batch's input rows (a split first layer's half) as a layer reads
/// it: the nonzeros by row for the forward product, and by column (the rows of `x^T`) for a
/// training step's weight gradient.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SparseInput<'a> {
    pub by_row: Csr<'a>,
    pub by_column: Option<Csr<'a>>,
}

/// The owner of a [`SparseInput`]: a batch's columns gathered as nonzeros, row by row
/// ([`Nonzeros::begin`], then [`Nonzeros::push_pixels`] or [`Nonzeros::push_values`] for each
/// row), then by column when a
/// weight gradient will read them ([`Nonzeros::lay_out_by_column`]). Its
/// buffers are reserved for every input of the largest batch seen, so a warm step does not
/// allocate.
#[derive(Debug, Default)]
pub(crate) struct Nonzeros {
    cols: usize,
    /// The batch's entries so far: the first `nnz` of `row_index` and `row_value`, which have
    /// room for every input of the largest batch seen.
    nnz: usize,
    row_starts: Vec<u32>,
    row_index: Vec<u32>,
    row_value: Vec<f32>,
    /// The transpose's rows, built by `lay_out_by_column`; `by_column` says whether they are
    /// this batch's.
    col_starts: Vec<u32>,
    col_index: Vec<u32>,
    col_value: Vec<f32>,
    by_column: bool,
}

impl Nonzeros {
    /// Starts a batch of `rows` rows of `cols` columns. Refuses a batch whose entries would
    /// not fit the `u32` offsets.
    pub(crate) fn begin(&mut self, rows: usize, cols: usize) -> Result<()> {
        let inputs = rows
            .checked_mul(cols)
            .filter(|&n| n <= u32::MAX as usize)
            .ok_or_else(|| Error::Shape(format!("{rows} rows of {cols} inputs overflow a sparse batch")))?;
        (self.cols, self.nnz, self.by_column) = (cols, 0, false);
        self.row_starts.clear();
        self.row_starts.reserve(rows + 1);
        self.row_starts.push(0);
        self.make_room(inputs + 8);
        // The layout by column holds as many entries, at most every input.
        if self.col_index.len() < inputs {
            self.col_index.resize(inputs, 0);
            self.col_value.resize(inputs, 0.0);
        }
        Ok(())
    }

    /// Makes `row_index` and `row_value` hold at least `len` entries past the batch's.
    fn make_room(&mut self, len: usize) {
        let need = self.nnz.saturating_add(len);
        if self.row_index.len() < need {
            self.row_index.resize(need, 0);
            self.row_value.resize(need, 0.0);
        }
    }

    /// Adds a row of inputs (at most the batch's `cols`; more are ignored): those that are
    /// not +0.
    pub(crate) fn push_values(&mut self, row: &[f32]) {
        let row = &row[..row.len().min(self.cols)];
        self.make_room(row.len());
        let (index, value) = (&mut self.row_index[..], &mut self.row_value[..]);
        let mut n = self.nnz;
        // Every input is written at the next free place, which only an entry then takes: no
        // branch to mispredict at each edge of a run of zeros. `n` stays below the room made.
        for (c, &x) in row.iter().enumerate() {
            index[n] = c as u32;
            value[n] = x;
            n += usize::from(x.to_bits() != 0);
        }
        self.end_row(n);
    }

    /// Adds a row of pixels (at most the batch's `cols`; more are ignored), those that are not
    /// 0, each as `lut[p]` (the values of [`crate::spec::pixel_value`]).
    pub(crate) fn push_pixels(&mut self, row: &[u8], lut: &[f32; 256]) {
        let row = &row[..row.len().min(self.cols)];
        // Eight more than the row: the vector loop stores eight entries past the last one.
        self.make_room(row.len() + 8);
        let (index, value) = (&mut self.row_index[..], &mut self.row_value[..]);
        let n = match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` found AVX2 and FMA (`Avx512` implies both); there is room for
            // eight entries past the row's.
            Isa::Avx512 | Isa::Avx2Fma => unsafe { pixels_avx2(row, lut, index, value, self.nnz) },
            _ => pixels_scalar(row, 0, lut, index, value, self.nnz),
        };
        self.end_row(n);
    }

    /// Ends the current row at `nnz` entries.
    fn end_row(&mut self, nnz: usize) {
        self.nnz = nnz;
        self.row_starts.push(nnz as u32);
    }

    /// Lays the batch's entries out by column too (each column's rows in increasing order),
    /// for a weight gradient; [`Nonzeros::begin`] drops them.
    pub(crate) fn lay_out_by_column(&mut self) {
        self.by_column = true;
        // A counting sort: each column's entries counted, their starts summed, then filled in
        // row order, so that each column lists its rows in increasing order.
        self.col_starts.resize(self.cols + 1, 0);
        self.col_starts.fill(0);
        let nnz = self.nnz;
        for &c in &self.row_index[..nnz] {
            self.col_starts[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            self.col_starts[c + 1] += self.col_starts[c];
        }
        // Sized in `begin` for every input of the batch; more only if more rows came than it
        // was told.
        if self.col_index.len() < nnz {
            self.col_index.resize(nnz, 0);
            self.col_value.resize(nnz, 0.0);
        }
        // `col_starts[c]` walks up to column c + 1's start as column c fills; shifted back
        // below.
        for r in 0..self.row_starts.len() - 1 {
            for t in self.row_starts[r] as usize..self.row_starts[r + 1] as usize {
                let c = self.row_index[t] as usize;
                let at = self.col_starts[c] as usize;
                self.col_index[at] = r as u32;
                self.col_value[at] = self.row_value[t];
                self.col_starts[c] += 1;
            }
        }
        self.col_starts.copy_within(..self.cols, 1);
        self.col_starts[0] = 0;
    }

    /// The batch's rows.
    pub(crate) fn rows(&self) -> usize {
        self.row_starts.len().saturating_sub(1)
    }

    /// Whether few enough inputs are nonzero for the sparse product to pay
    /// (at most [`MAX_DENSITY`]), on a CPU whose dense product it gives the bits of (one with
    /// the vector kernel: elsewhere `gemm` runs `matrixmultiply`, whose sums are others).
    pub(crate) fn sparse_enough(&self) -> bool {
        let inputs = (self.rows() * self.cols) as f64;
        Isa::detect() != Isa::Portable && self.nnz as f64 <= MAX_DENSITY * inputs
    }

    /// The batch as a layer reads it.
    pub(crate) fn input(&self) -> SparseInput<'_> {
        let nnz = self.nnz;
        let by_row = Csr {
            starts: &self.row_starts,
            index: &self.row_index[..nnz],
            value: &self.row_value[..nnz],
            cols: self.cols,
        };
        let by_column = self.by_column.then(|| Csr {
            starts: &self.col_starts,
            index: &self.col_index[..nnz],
            value: &self.col_value[..nnz],
            cols: self.rows(),
        });
        SparseInput { by_row, by_column }
    }

    /// Writes the batch's rows densely into `x: [rows, cols]` (see [`Csr::scatter_into`]).
    pub(crate) fn scatter_into(&self, x: &mut [f32]) {
        self.input().by_row.scatter_into(x)
    }
}

/// The entries of pixels `row`, whose first is column `first`, from `index[n]` and
/// `value[n]` on: each pixel written at the next free place, which only a nonzero one then
/// takes (no branch to mispredict at each edge of a stroke); eight pixels at a time are skipped
/// when all are 0 (digits leave long runs of background). Returns the entries' new end.
fn pixels_scalar(
    row: &[u8],
    first: usize,
    lut: &[f32; 256],
    index: &mut [u32],
    value: &mut [f32],
    mut n: usize,
) -> usize {
    for (w, eight) in row.chunks(8).enumerate() {
        if let Ok(word) = <[u8; 8]>::try_from(eight) {
            if u64::from_ne_bytes(word) == 0 {
                continue;
            }
        }
        for (k, &p) in eight.iter().enumerate() {
            index[n] = (first + w * 8 + k) as u32;
            value[n] = lut[usize::from(p)];
            n += usize::from(p != 0);
        }
    }
    n
}

/// For each mask of eight lanes, the lanes it selects in order, then zeros: the permutation that
/// packs an eight-pixel group's nonzero ones at its front.
const PACK: [[u32; 8]; 256] = {
    let mut table = [[0u32; 8]; 256];
    let mut mask = 0;
    while mask < 256 {
        let (mut lane, mut k) = (0, 0);
        while lane < 8 {
            if mask >> lane & 1 == 1 {
                table[mask][k] = lane as u32;
                k += 1;
            }
            lane += 1;
        }
        mask += 1;
    }
    table
};

/// [`pixels_scalar`] eight pixels at a time with AVX2: the group's values by the dense gather's
/// conversion (`cpu/gather.rs`, which gives [`crate::spec::pixel_value`]'s bits for every
/// byte), its nonzero ones and their columns packed to the front by one
/// permutation ([`PACK`]) and stored whole, the next group's entries starting after the last
/// nonzero one.
///
/// SAFETY (caller): the CPU has AVX2 and FMA. (`index` and `value` need room for eight entries
/// past the row's; a slice bound checks it.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pixels_avx2(
    row: &[u8],
    lut: &[f32; 256],
    index: &mut [u32],
    value: &mut [f32],
    mut n: usize,
) -> usize {
    use std::arch::x86_64::*;
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let groups = row.chunks_exact(8);
    let tail = groups.remainder();
    for (w, eight) in groups.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(eight);
        let word = u64::from_ne_bytes(word);
        if word == 0 {
            continue;
        }
        // The values by the dense gather's conversion (the bits of `pixel_value`).
        let mut values = [0.0f32; 8];
        pixels_by_fma(eight, &mut values);
        // SAFETY: eight floats.
        let x = unsafe { _mm256_loadu_ps(values.as_ptr()) };
        let ints = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(word as i64));
        let nonzero = _mm256_cmpgt_epi32(ints, _mm256_setzero_si256());
        let mask = _mm256_movemask_ps(_mm256_castsi256_ps(nonzero)) as usize;
        let pack = _mm256_loadu_si256(PACK[mask].as_ptr().cast());
        let cols =
            _mm256_add_epi32(_mm256_permutevar8x32_epi32(lanes, pack), _mm256_set1_epi32((w * 8) as i32));
        let (index, value) = (&mut index[n..n + 8], &mut value[n..n + 8]);
        // SAFETY: each slice holds the eight lanes stored.
        unsafe {
            _mm256_storeu_si256(index.as_mut_ptr().cast(), cols);
            _mm256_storeu_ps(value.as_mut_ptr(), _mm256_permutevar8x32_ps(x, pack));
        }
        n += mask.count_ones() as usize;
    }
    let first = row.len() - tail.len();
    pixels_scalar(tail, first, lut, index, value, n)
}

/// `C = A B` for a sparse `A: [m, k]` and `B: [k, n]` row-major into `c: [m, n]`
/// (overwritten), every output with the bits of `gemm`'s chain over all of `k` (see the
/// module's comment).
pub(crate) fn product(a: Csr<'_>, b: Rhs<'_>, n: usize, c: &mut [f32]) -> Result<()> {
    product_on(Isa::detect(), a, b, n, c)
}

/// The dense operand `B` of [`product`], with whether every value of it is finite: found once,
/// by [`Rhs::new`]'s scan of `B`, for all the parts of a product cut by rows (the wide model's
/// first layer has 400 k weights in each half).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rhs<'a> {
    values: &'a [f32],
    finite: bool,
}

impl<'a> Rhs<'a> {
    /// `values` with their scan.
    pub(crate) fn new(values: &'a [f32]) -> Self {
        Rhs { values, finite: finite(values) }
    }
}

/// [`product`] with the instruction set chosen by the caller (the tests run each one this CPU
/// has; `isa` must be supported by this CPU).
fn product_on(isa: Isa, a: Csr<'_>, rhs: Rhs<'_>, n: usize, c: &mut [f32]) -> Result<()> {
    let (m, k, b) = (a.rows(), a.cols, rhs.values);
    // Checked: the kernels' loads and stores rely on these lengths.
    let fits = |len: usize, rows: usize| rows.checked_mul(n) == Some(len);
    if m == 0 || k == 0 || n == 0 || !fits(b.len(), k) || !fits(c.len(), m) {
        return Err(Error::Shape(format!(
            "sparse product of [{m}, {k}] and B of {} values into C of {} values with {n} columns",
            b.len(),
            c.len()
        )));
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller chose an instruction set this CPU has; the lengths were checked
        // above and the indices are below k by `Csr`'s invariants.
        Isa::Avx512 => unsafe { product_avx512(a, rhs, n, c) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2Fma => unsafe { product_avx2(a, rhs, n, c) },
        _ => {
            let sums = rhs.finite.then(|| {
                for (i, row) in c.chunks_exact_mut(n).enumerate() {
                    for (j, out) in row.iter_mut().enumerate() {
                        *out = sparse_chain(a, b, n, i, j);
                    }
                }
                Sums { neg_zero: c.iter().any(|v| v.to_bits() == NEG_ZERO) }
            });
            fix_up(a, b, n, c, sums)
        }
    }
    Ok(())
}

/// Where the sparse sums may differ from the dense ones, the whole chains: every output when
/// `B` was not finite (`sums` is `None`), else each output stored as -0. Inlined into each
/// kernel's function, so that its FMAs are the instruction the dense product uses, in the
/// same floating-point mode (the backend's threads flush subnormals: `threads.rs`), not a
/// library call that may compute them otherwise.
#[inline(always)]
fn fix_up(a: Csr<'_>, b: &[f32], n: usize, c: &mut [f32], sums: Option<Sums>) {
    let every = match sums {
        None => true,
        Some(Sums { neg_zero: false }) => return,
        Some(Sums { neg_zero: true }) => false,
    };
    for (i, row) in c.chunks_exact_mut(n).enumerate() {
        for (j, out) in row.iter_mut().enumerate() {
            if every || out.to_bits() == NEG_ZERO {
                *out = chain(a, b, n, i, j);
            }
        }
    }
}

/// The bits of -0.0.
const NEG_ZERO: u32 = 0x8000_0000;

/// What the kernel found in the sums it stored.
struct Sums {
    /// Some output is (or may be: lanes past a row's end count too) -0.
    neg_zero: bool,
}

/// Whether every value of `b` is finite (exponent bits all ones mark an infinity or a NaN). A
/// max over every value, which vectorizes, rather than a search that stops at the first.
#[inline(always)]
fn finite(b: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    b.iter().map(|v| v.to_bits() & EXP).max().unwrap_or(0) != EXP
}

/// Output `(i, j)` as `gemm` computes it: one FMA chain from +0 over every `p < k`, the
/// zeros that `A` leaves out included.
#[inline(always)]
fn chain(a: Csr<'_>, b: &[f32], n: usize, i: usize, j: usize) -> f32 {
    let (index, value) = a.row(i);
    let mut entries = index.iter().zip(value).peekable();
    let mut acc = 0.0f32;
    for p in 0..a.cols {
        let x = match entries.peek() {
            Some(&(&c, &v)) if c as usize == p => {
                entries.next();
                v
            }
            _ => 0.0,
        };
        acc = x.mul_add(b[p * n + j], acc);
    }
    acc
}

/// Output `(i, j)` over `A`'s entries only: what the vector kernels compute, lane by lane.
#[inline(always)]
fn sparse_chain(a: Csr<'_>, b: &[f32], n: usize, i: usize, j: usize) -> f32 {
    let (index, value) = a.row(i);
    index.iter().zip(value).fold(0.0f32, |acc, (&p, &x)| x.mul_add(b[p as usize * n + j], acc))
}

/// Instantiates the kernel for a block's vector count and whether its last vector is whole.
macro_rules! block_kernels {
    ($S:ty, $nv:expr, $full:expr, $args:expr, [$($n:literal),*]) => {
        match ($nv, $full) {
            $(
                ($n, true) => rows_block::<$S, $n, true>($args),
                ($n, false) => rows_block::<$S, $n, false>($args),
            )*
            _ => unreachable!("a block has at most {} vectors", BLOCK / <$S>::WIDTH),
        }
    };
}

/// [`product`] with AVX-512F. SAFETY (caller): the CPU has AVX-512F; `b` holds `a.cols * n`
/// floats and `c` `a.rows() * n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn product_avx512(a: Csr<'_>, b: Rhs<'_>, n: usize, c: &mut [f32]) {
    use super::simd::Avx512 as S;
    // SAFETY: AVX-512F is enabled here; `blocks` builds blocks within the caller's lengths.
    blocks(a, b, n, c, S::WIDTH, |nv, full, blk| unsafe { block_kernels!(S, nv, full, blk, [1, 2, 3, 4]) })
}

/// [`product`] with AVX2 and FMA. SAFETY (caller): as [`product_avx512`]'s, for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn product_avx2(a: Csr<'_>, b: Rhs<'_>, n: usize, c: &mut [f32]) {
    use super::simd::Avx2Fma as S;
    // SAFETY: AVX2 and FMA are enabled here; as above.
    blocks(a, b, n, c, S::WIDTH, |nv, full, blk| unsafe {
        block_kernels!(S, nv, full, blk, [1, 2, 3, 4, 5, 6, 7, 8])
    })
}

/// Walks `C`'s columns in blocks of [`BLOCK`], calling `kernel(vectors, whole, block)` on each
/// (vectors of `width` lanes; `whole`: the last one is too), then the fix-ups; every output by
/// the whole chain instead when `B` is not finite. Inlined into each instruction set's
/// function, so that the kernels and the fix-ups' FMAs have its features.
#[inline(always)]
fn blocks(
    a: Csr<'_>,
    rhs: Rhs<'_>,
    n: usize,
    c: &mut [f32],
    width: usize,
    kernel: impl Fn(usize, bool, &Block<'_>) -> bool,
) {
    let b = rhs.values;
    if !rhs.finite {
        return fix_up(a, b, n, c, None);
    }
    let mut neg_zero = false;
    for j0 in (0..n).step_by(BLOCK) {
        let cols = BLOCK.min(n - j0);
        let blk = Block { a, b: b.as_ptr(), n, c: c.as_mut_ptr(), j0, cols };
        neg_zero |= kernel(cols.div_ceil(width), cols.is_multiple_of(width), &blk);
    }
    fix_up(a, b, n, c, Some(Sums { neg_zero }))
}

/// Columns `j0..j0 + cols` of every row of `C = A B`; `B` and `C` are `n` wide.
struct Block<'a> {
    a: Csr<'a>,
    b: *const f32,
    n: usize,
    c: *mut f32,
    j0: usize,
    cols: usize,
}

/// One block of columns for every row of `A`: `NV` accumulators, each nonzero `a_ip`
/// broadcast and multiplied into row `p` of `B` (`FULL`: every vector whole, else the last
/// one masked). The block of `B` (at most 64 columns of the rows the nonzeros name) is read
/// once per nonzero; for the first layer's forward it stays in L2 over the batch. Returns
/// whether any lane of a stored sum is -0.
///
/// SAFETY (caller): the CPU has `S`'s features; `B` holds `a.cols` rows and `C` `a.rows()`
/// rows of `n` floats; `cols <= NV * S::WIDTH`, and `== ` when `FULL`.
#[inline(always)]
unsafe fn rows_block<S: Lanes, const NV: usize, const FULL: bool>(blk: &Block<'_>) -> bool {
    let mut masks = [S::mask(0); NV];
    for (v, m) in masks.iter_mut().enumerate() {
        *m = S::mask(blk.cols.saturating_sub(v * S::WIDTH));
    }
    let (a, mut neg_zero) = (blk.a, false);
    for i in 0..a.rows() {
        let (index, value) = a.row(i);
        let mut acc = [S::zero(); NV];
        for (&p, x) in index.iter().zip(value) {
            let brow = blk.b.wrapping_add(p as usize * blk.n + blk.j0);
            let x = S::splat(x);
            for v in 0..NV {
                // SAFETY: row p < a.cols of B, columns within the block (masked past cols).
                let bv = load::<S, FULL>(brow.wrapping_add(v * S::WIDTH), masks[v]);
                acc[v] = S::fma(x, bv, acc[v]);
            }
        }
        let crow = blk.c.wrapping_add(i * blk.n + blk.j0);
        for v in 0..NV {
            // SAFETY: row i of C, the block's columns.
            store::<S, FULL>(crow.wrapping_add(v * S::WIDTH), acc[v], masks[v]);
            neg_zero |= S::any_neg_zero(acc[v]);
        }
    }
    neg_zero
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm::{gemm, Epilogue, StridedA};
    use crate::cpu::{bits, test_values};

    /// `x: [rows, cols]` as its nonzeros (every value but +0), by column too when asked.
    fn sparse(x: &[f32], rows: usize, cols: usize, by_column: bool) -> Nonzeros {
        let mut nz = Nonzeros::default();
        nz.begin(rows, cols).expect("begin");
        for row in x.chunks_exact(cols) {
            nz.push_values(row);
        }
        if by_column {
            nz.lay_out_by_column();
        }
        nz
    }

    /// The dense product `A B` as gemm computes it, zeros included: gemm itself where it runs
    /// the vector kernel (its own tests check it against the chain), else the chain of FMAs
    /// written out (gemm is `matrixmultiply` there, with other sums).
    fn dense_product(a: StridedA<'_>, b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        if Isa::detect() != Isa::Portable {
            gemm(a, b, &mut c, (m, n, k), Epilogue::None).expect("gemm");
            return c;
        }
        for (i, row) in c.chunks_exact_mut(n).enumerate() {
            for (j, out) in row.iter_mut().enumerate() {
                *out = (0..k).fold(0.0f32, |acc, p| a.data[i * a.rs + p * a.cs].mul_add(b[p * n + j], acc));
            }
        }
        c
    }

    /// Values in [-1, 1) with about `zeros` of them +0 (and a few -0, kept as entries).
    fn mostly_zeros(len: usize, zeros: f32, seed: u64) -> Vec<f32> {
        let keep = test_values(len, seed + 1);
        test_values(len, seed)
            .into_iter()
            .zip(keep)
            .enumerate()
            .map(|(i, (v, k))| match (i % 97, (k + 1.0) / 2.0 < zeros) {
                (0, _) => -0.0,
                (_, true) => 0.0,
                _ => v,
            })
            .collect()
    }

    /// The instruction sets this CPU has.
    fn isas() -> Vec<Isa> {
        let best = Isa::detect();
        [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
            .into_iter()
            .filter(|&isa| match best {
                Isa::Avx512 => true,
                Isa::Avx2Fma => isa != Isa::Avx512,
                Isa::Portable => isa == Isa::Portable,
            })
            .collect()
    }

    /// The sparse product gives the bits of gemm's chain on awkward shapes (block tails,
    /// a width past one block, empty rows and columns), A and A^T, for each instruction set.
    #[test]
    fn sparse_product_gives_the_dense_chain_bits() {
        for &(m, k, n, zeros) in
            &[(37, 392, 64, 0.81), (5, 17, 3, 0.5), (128, 392, 64, 0.95), (9, 33, 70, 0.7), (3, 8, 130, 1.0)]
        {
            let x = mostly_zeros(m * k, zeros, (m * k + n) as u64);
            let b = test_values(k * n, 7);
            let nz = sparse(&x, m, k, true);
            let want = dense_product(StridedA { data: &x, rs: k, cs: 1 }, &b, (m, n, k));
            let dz = test_values(m * n, 9);
            let want_t = dense_product(StridedA { data: &x, rs: 1, cs: k }, &dz, (k, n, m));
            for isa in isas() {
                let mut got = vec![f32::NAN; m * n];
                product_on(isa, nz.input().by_row, Rhs::new(&b), n, &mut got).expect("product");
                assert_eq!(bits(&got), bits(&want), "{isa:?}: A B, [{m}, {k}] x [{k}, {n}]");
                let mut got_t = vec![f32::NAN; k * n];
                let by_column = nz.input().by_column.expect("by column");
                product_on(isa, by_column, Rhs::new(&dz), n, &mut got_t).expect("product");
                assert_eq!(bits(&got_t), bits(&want_t), "{isa:?}: A^T dZ, [{k}, {m}] x [{m}, {n}]");
            }
        }
    }

    /// Where skipping a zero would change a bit, the product computes the whole chain: a sum
    /// whose terms all underflow to -0 (+0 in the dense chain once a zero input's term is
    /// added), and a B holding an infinity or a NaN (0 * inf is a NaN in the dense chain).
    #[test]
    fn signed_zero_sums_and_non_finite_b_give_the_dense_bits() {
        let (m, k, n) = (2, 4, 3);
        // Row 0: x = [t, 0, t, 0]; B's rows 0 and 2 are tiny negatives, so each product
        // underflows to -0 and the sparse sum is -0; the dense chain's +0 * B[3] = +0 (B's
        // rows 1 and 3 are positive) makes its sum +0.
        let x = [1e-30f32, 0.0, 1e-30, 0.0, 0.0, 2.0, 0.0, 0.0];
        let mut b = vec![-1e-30f32; k * n];
        b[n..2 * n].fill(0.5);
        b[3 * n..].fill(0.5);
        for non_finite in [None, Some(f32::INFINITY), Some(f32::NAN)] {
            let mut b = b.clone();
            if let Some(v) = non_finite {
                b[3 * n + 1] = v;
            }
            let nz = sparse(&x, m, k, false);
            let want = dense_product(StridedA { data: &x, rs: k, cs: 1 }, &b, (m, n, k));
            if non_finite.is_none() {
                // The case is what it claims to be: a +0 the skipping would make -0.
                assert_eq!(want[0].to_bits(), 0, "dense sum of row 0 is +0");
                assert_eq!(sparse_chain(nz.input().by_row, &b, n, 0, 0).to_bits(), 0x8000_0000, "sparse -0");
            } else {
                assert!(want[1].is_nan(), "dense 0 * {non_finite:?} is a NaN");
            }
            for isa in isas() {
                let mut got = vec![1.0f32; m * n];
                product_on(isa, nz.input().by_row, Rhs::new(&b), n, &mut got).expect("product");
                assert_eq!(bits(&got), bits(&want), "{isa:?}, B holding {non_finite:?}");
            }
        }
    }

    /// On the backend's threads, which flush subnormals to zero (`threads.rs`), a product
    /// that would be subnormal is a signed zero: the sums the fix-up recomputes must be those
    /// of the same instructions in the same mode, as gemm's are. Products of 1e-20 and -1e-20
    /// (1e-40, subnormal) make the sparse sum -0 there, which the dense chain turns into +0;
    /// an FMA that kept subnormals would give -2e-40.
    #[test]
    fn fix_ups_flush_subnormals_as_the_dense_product_does() {
        let (m, k, n) = (2, 4, 3);
        let x = [1e-20f32, 0.0, 1e-20, 0.0, 3e-39, 2.0, 0.0, 0.0];
        let mut b = vec![-1e-20f32; k * n];
        b[n..2 * n].fill(0.5);
        b[3 * n..].fill(0.5);
        let nz = sparse(&x, m, k, false);
        let (want, got) = super::super::threads::on_pool(|| {
            let mut want = vec![0.0f32; m * n];
            gemm(StridedA { data: &x, rs: k, cs: 1 }, &b, &mut want, (m, n, k), Epilogue::None)
                .expect("gemm");
            let got: Vec<Vec<f32>> = isas()
                .into_iter()
                .filter(|&isa| isa != Isa::Portable)
                .map(|isa| {
                    let mut got = vec![1.0f32; m * n];
                    product_on(isa, nz.input().by_row, Rhs::new(&b), n, &mut got).expect("product");
                    got
                })
                .collect();
            (want, got)
        });
        if Isa::detect() != Isa::Portable {
            assert_eq!(want[0].to_bits(), 0, "the dense sum is +0 where subnormals flush");
        }
        for got in got {
            assert_eq!(bits(&got), bits(&want));
        }
    }

    /// Pixels gather to the same entries in the vector loop as in the scalar one: every byte
    /// value, all-zero and partly zero groups of eight, a row whose length is not a multiple
    /// of eight.
    #[test]
    fn pixel_rows_give_the_same_entries_in_every_loop() {
        let lut = crate::spec::pixel_lut();
        let mut rows: Vec<Vec<u8>> = vec![(0..=255).collect(), (0..=255).rev().collect()];
        rows.push(
            (0..403).map(|i| if i % 11 < 6 || i % 50 < 16 { 0 } else { (i * 37 % 256) as u8 }).collect(),
        );
        rows.push(vec![0; 19]);
        rows.push((0..19).map(|i| (i % 3 * 100) as u8).collect());
        for row in &rows {
            let mut nz = Nonzeros::default();
            nz.begin(1, row.len()).expect("begin");
            nz.push_pixels(row, &lut);
            let (mut index, mut value) = (vec![0u32; row.len()], vec![0.0f32; row.len()]);
            let n = pixels_scalar(row, 0, &lut, &mut index, &mut value, 0);
            let got = nz.input().by_row.row(0);
            assert_eq!(got.0, &index[..n], "columns of a row of {}", row.len());
            assert_eq!(bits(got.1), bits(&value[..n]), "values of a row of {}", row.len());
            let want: Vec<u32> =
                row.iter().enumerate().filter(|(_, &p)| p != 0).map(|(c, _)| c as u32).collect();
            assert_eq!(got.0, &want[..], "the nonzero pixels' columns");
        }
    }

    /// Scattered back, the entries are the rows they were gathered from, -0 included; a row
    /// slice keeps its rows; the density test counts entries.
    #[test]
    fn nonzeros_scatter_back_and_slice() {
        let (m, k) = (7, 19);
        let x = mostly_zeros(m * k, 0.6, 3);
        let nz = sparse(&x, m, k, true);
        let mut back = vec![f32::NAN; m * k];
        nz.scatter_into(&mut back);
        assert_eq!(bits(&back), bits(&x));
        let rows = nz.input().by_row.slice_rows(2, 3).expect("rows 2..5");
        assert_eq!((rows.rows(), rows.cols()), (3, k));
        for r in 0..3 {
            let (index, value) = rows.row(r);
            let dense: Vec<(u32, u32)> = x[(r + 2) * k..(r + 3) * k]
                .iter()
                .enumerate()
                .filter(|(_, v)| v.to_bits() != 0)
                .map(|(c, v)| (c as u32, v.to_bits()))
                .collect();
            assert_eq!(index.iter().copied().zip(bits(value)).collect::<Vec<_>>(), dense, "row {r}");
        }
        assert!(nz.input().by_row.slice_rows(5, 3).is_none(), "past the last row");
        let dense = sparse(&test_values(m * k, 4), m, k, false);
        assert!(!dense.sparse_enough(), "every input nonzero");
        let empty = sparse(&vec![0.0; m * k], m, k, false);
        assert_eq!(empty.sparse_enough(), Isa::detect() != Isa::Portable, "no input nonzero");
    }
}
