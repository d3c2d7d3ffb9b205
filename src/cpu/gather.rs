//! The CPU executor's batch gather: rows of the data set, picked by index, into the buffers the
//! model reads, as dense rows (`p / 255` for pixels, the bits of [`pixel_value`], which the
//! GPU's table holds too; f32 values copied) or as their nonzeros (`cpu/sparse.rs`) for a
//! first layer on mostly-zero data. A copy is a copy: neither changes a bit.
//!
//! A batch's rows are scattered over the data set, and waiting for them at the start of each
//! row was most of the gather's time: so each call is also given the rows of the next step,
//! which it asks of memory as it gathers their counterparts here, so that they arrive while
//! this step computes.

use std::ops::Range;

use crate::data::{Dataset, Features};
use crate::error::Result;
use crate::spec::pixel_lut;
#[cfg(doc)]
use crate::spec::pixel_value;

use super::simd::Isa;
use super::sparse::Nonzeros;

/// Columns `cols` of rows `idx` of `data` into `x: [idx.len(), cols.len()]`, prefetching
/// the same columns of the rows `next`.
pub(super) fn gather_rows(data: &Dataset, idx: &[u32], next: &[u32], cols: Range<usize>, x: &mut [f32]) {
    let (f, w) = (data.features(), cols.len());
    let span = |i: u32| i as usize * f + cols.start..i as usize * f + cols.end;
    let pixels = match data.feature_data() {
        Features::Pixels(p) => p,
        Features::Values(v) => {
            for (&i, x) in idx.iter().zip(x.chunks_exact_mut(w)) {
                if w == f {
                    data.row_into(i as usize, x);
                } else {
                    x.copy_from_slice(&v[span(i)]);
                }
            }
            return;
        }
    };
    let row = |i: u32| &pixels[span(i)];
    prefetch_next_step(next, row);
    let isa = Isa::detect();
    for (r, (&i, x)) in idx.iter().zip(x.chunks_exact_mut(w)).enumerate() {
        prefetch_ahead(idx, next, r, row);
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` found AVX-512F on this CPU.
            Isa::Avx512 => unsafe { pixels_to_f32_avx512(row(i), x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` found AVX2 and FMA on this CPU.
            Isa::Avx2Fma => unsafe { pixels_to_f32_avx2(row(i), x) },
            _ => pixels_to_f32(row(i), x),
        }
    }
}

/// `x = p / 255` for each pixel: [`pixel_value`]'s formula, spelled out so that it inlines
/// into the vector loop (a test checks the bits against it for every byte).
#[inline(always)]
fn pixels_to_f32(p: &[u8], x: &mut [f32]) {
    for (x, &p) in x.iter_mut().zip(p) {
        *x = f32::from(p) / 255.0;
    }
}

/// [`pixels_to_f32`]'s bits without a division, for AVX-512 (whose FMA rounds once): the
/// quotient `q = p * (1/255)` is off by an ulp for half of the bytes, and one Newton step on
/// its remainder, `q + fma(-q, 255, p) * (1/255)`, rounds to the correctly rounded `p / 255`
/// for every byte (a test checks all 256). Three vector operations instead of a division,
/// which ran at a sixteenth of their rate.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pixels_to_f32_avx512(p: &[u8], x: &mut [f32]) {
    pixels_by_fma(p, x)
}

/// [`pixels_to_f32_avx512`] for CPUs with AVX2 and FMA but not AVX-512 (Zen 3, older Intel).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn pixels_to_f32_avx2(p: &[u8], x: &mut [f32]) {
    pixels_by_fma(p, x)
}

/// The quotient and its Newton step of [`pixels_to_f32_avx512`]. Only for functions whose
/// target has FMA: elsewhere `mul_add` is a library call.
#[inline(always)]
pub(super) fn pixels_by_fma(p: &[u8], x: &mut [f32]) {
    const INV: f32 = 1.0 / 255.0;
    for (x, &p) in x.iter_mut().zip(p) {
        let p = f32::from(p);
        let q = p * INV;
        *x = (-q).mul_add(255.0, p).mul_add(INV, q);
    }
}

/// Asks the CPU to start loading `row` into cache: batch rows are scattered over the data set,
/// and the conversion loop otherwise waits on memory at the start of every row.
#[inline]
fn prefetch_row(row: &[u8]) {
    for line in row.chunks(64) {
        prefetch(line.as_ptr());
    }
}

/// Asks the CPU to start loading the cache line holding `*p` (a hint: nothing is read).
#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint with no architectural effect, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Columns `cols` of rows `idx` of `data` into `nz` as nonzeros, by row: the values
/// [`gather_rows`] writes, its +0s left out. Prefetches the rows `next` as it does.
pub(super) fn gather_nonzeros(
    data: &Dataset,
    idx: &[u32],
    next: &[u32],
    cols: Range<usize>,
    nz: &mut Nonzeros,
) -> Result<()> {
    nz.begin(idx.len(), cols.len())?;
    let f = data.features();
    let span = |i: u32| i as usize * f + cols.start..i as usize * f + cols.end;
    match data.feature_data() {
        Features::Values(v) => {
            for &i in idx {
                nz.push_values(&v[span(i)]);
            }
        }
        Features::Pixels(pixels) => {
            let row = |i: u32| &pixels[span(i)];
            let lut = pixel_lut();
            prefetch_next_step(next, row);
            for (r, &i) in idx.iter().enumerate() {
                prefetch_ahead(idx, next, r, row);
                nz.push_pixels(row(i), &lut);
            }
        }
    }
    Ok(())
}

/// Asks for the first and last byte of each row of the next step (`row(i)`), in one burst: the
/// rows are scattered over tens of megabytes, each on its own page, and a prefetch waits for
/// its page walk; a burst lets the walks overlap instead of taking one per row.
fn prefetch_next_step<'a>(next: &[u32], row: impl Fn(u32) -> &'a [u8]) {
    for &ahead in next {
        let ahead = row(ahead);
        prefetch(ahead.as_ptr());
        prefetch(ahead.as_ptr().wrapping_add(ahead.len() - 1));
    }
}

/// Before gathering row `r` of this step: the next row of this step, in case it was not
/// fetched ahead (the first step), and row `r` of the next step, whole.
fn prefetch_ahead<'a>(idx: &[u32], next: &[u32], r: usize, row: impl Fn(u32) -> &'a [u8]) {
    for &ahead in idx.get(r + 1).into_iter().chain(next.get(r)) {
        prefetch_row(row(ahead));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::bits;
    use crate::data::Targets;
    use crate::spec::pixel_value;

    /// Every byte converts to `pixel_value`'s bits, in the portable loop, the AVX-512 and the AVX2
    /// ones.
    #[test]
    fn pixel_conversion_gives_pixel_value_bits_for_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let want: Vec<u32> = bytes.iter().map(|&p| pixel_value(p).to_bits()).collect();
        let mut x = vec![0.0f32; 256];
        pixels_to_f32(&bytes, &mut x);
        assert_eq!(bits(&x), want, "portable loop");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            x.fill(0.0);
            // SAFETY: AVX-512F was detected just above.
            unsafe { pixels_to_f32_avx512(&bytes, &mut x) };
            assert_eq!(bits(&x), want, "AVX-512 loop");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            x.fill(0.0);
            // SAFETY: AVX2 and FMA were detected just above.
            unsafe { pixels_to_f32_avx2(&bytes, &mut x) };
            assert_eq!(bits(&x), want, "AVX2 loop");
        }
    }

    /// Pixels and f32 values gather as nonzeros to the entries of their dense gather, +0s left
    /// out, by row and by column, for whole rows and a column range.
    #[test]
    fn nonzero_gather_holds_the_dense_gather() {
        let (rows, f) = (6, 40);
        // Runs of zeros, some eight-pixel words all zero, others partly.
        let px: Vec<u8> =
            (0..rows * f).map(|i| if i % 7 < 4 || i % 40 < 16 { 0 } else { (i * 37 % 256) as u8 }).collect();
        let labels: Vec<u8> = (0..rows).map(|r| (r % 10) as u8).collect();
        let images = Dataset::new(px.clone(), labels.clone(), f, 10).expect("pixels");
        let mut values: Vec<f32> = px.iter().map(|&p| pixel_value(p)).collect();
        values[3] = -0.0;
        let targets =
            Targets::Classes { labels: labels.iter().map(|&l| u32::from(l)).collect(), classes: 10 };
        let table = Dataset::from_values(values, f, targets).expect("values");
        let idx = [4u32, 0, 5, 4];
        for data in [&images, &table] {
            for cols in [0..f, 3..29] {
                let mut dense = vec![f32::NAN; idx.len() * cols.len()];
                gather_rows(data, &idx, &[1], cols.clone(), &mut dense);
                let mut nz = Nonzeros::default();
                gather_nonzeros(data, &idx, &[1], cols.clone(), &mut nz).expect("gather");
                nz.lay_out_by_column();
                let mut back = vec![f32::NAN; dense.len()];
                nz.scatter_into(&mut back);
                assert_eq!(bits(&back), bits(&dense), "{cols:?}: by row");
                let t = nz.input().by_column.expect("by column");
                assert_eq!((t.rows(), t.cols()), (cols.len(), idx.len()), "{cols:?}: x^T's shape");
                let mut dense_t = vec![0.0f32; dense.len()];
                for (r, row) in dense.chunks_exact(cols.len()).enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        dense_t[c * idx.len() + r] = v;
                    }
                }
                let mut back_t = vec![f32::NAN; dense.len()];
                t.scatter_into(&mut back_t);
                assert_eq!(bits(&back_t), bits(&dense_t), "{cols:?}: by column");
            }
        }
    }
}
