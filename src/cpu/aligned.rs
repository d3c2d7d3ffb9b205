//! [`Floats`]: a growable `f32` buffer whose first element starts a 64-byte cache line, for
//! the CPU backend's parameters, gradients, moments, activations and gathered batches.
//!
//! Why: glibc's `malloc` aligns a `Vec<f32>` to 16 bytes only (a block it maps lies 16 bytes
//! past a page boundary), so up to every other 32-byte vector of such a buffer straddles two
//! cache lines; the product kernel loads `B` and loads and stores `C` in whole vectors, Adam
//! streams four buffers and the batch gather stores whole vectors, and each split access costs
//! two. On the Zen 3 of 2026-12-02 one thread's share of the MNIST model's first-layer
//! products ran 9 % (`A B`, 128 x 64 x 392) and 12 % (`A^T B`, 392 x 64 x 128) faster, median
//! per call, with their operands on a line (`examples/cpu_products.rs`, two runs), and the
//! epoch took 0.91x / 0.92x of its time at batch 128 / 32 (paired, 30 rounds;
//! BENCHMARKS.md, "A Zen 3 again"). Every tensor of a [`crate::ParamLayout`] starts at a
//! multiple of 4 floats, the MNIST model's at multiples of 16: those start on a line, and so
//! does each row of a tensor whose width is a multiple of 16 floats (the first layer's 64, not
//! the second's 10). No bit changes: only addresses do.

use std::ops::{Deref, DerefMut};

/// Floats per cache line.
const LINE: usize = 16;

/// One 64-byte cache line of floats: the unit of [`Floats`]' storage, whose alignment is what
/// aligns the buffer.
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([f32; LINE]);

/// `len` floats starting on a 64-byte boundary; dereferences to `[f32]`.
#[derive(Clone, Default)]
pub(super) struct Floats {
    lines: Vec<Line>,
    len: usize,
}

impl Floats {
    /// `len` zeros.
    pub(super) fn zeros(len: usize) -> Self {
        Floats { lines: vec![Line::default(); len.div_ceil(LINE)], len }
    }

    /// A copy of `values`.
    pub(super) fn from_slice(values: &[f32]) -> Self {
        let mut out = Floats::zeros(values.len());
        out.copy_from_slice(values);
        out
    }

    /// Makes the buffer `len` floats long, as `Vec::resize(len, 0.0)` does: the first
    /// `min(len, old len)` keep their values, the rest are zero. Never gives memory back, so a
    /// buffer that shrinks and grows again within its capacity does not allocate.
    pub(super) fn resize(&mut self, len: usize) {
        let old = self.len;
        if len > self.lines.len() * LINE {
            self.lines.resize(len.div_ceil(LINE), Line::default());
        }
        self.len = len;
        if len > old {
            self[old..].fill(0.0);
        }
    }
}

/// The floats, as a `Vec<f32>` prints them (not the lines, nor what lies past `len`).
impl std::fmt::Debug for Floats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl Deref for Floats {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &bytemuck::cast_slice::<Line, f32>(&self.lines)[..self.len]
    }
}

impl DerefMut for Floats {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut bytemuck::cast_slice_mut::<Line, f32>(&mut self.lines)[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_starts_a_cache_line_and_resizes_like_a_vec() {
        for len in [0, 1, 15, 16, 17, 50_890, 200_000] {
            let values: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let mut buf = Floats::from_slice(&values);
            assert_eq!(buf.as_ptr() as usize % 64, 0, "{len} floats: not on a cache line");
            assert_eq!(&buf[..], &values[..], "{len} floats: not the values given");
            let mut vec = values.clone();
            // Shrink, then grow past the old length and past the capacity: the same as a Vec.
            for new in [len / 2, len + 3, 2 * len + 40] {
                buf.resize(new);
                vec.resize(new, 0.0);
                assert_eq!(&buf[..], &vec[..], "{len} floats resized to {new}");
                assert_eq!(buf.as_ptr() as usize % 64, 0, "{len} floats resized to {new}: not aligned");
            }
        }
    }

    #[test]
    fn values_hidden_by_a_shrink_come_back_as_zeros_in_the_same_memory() {
        let mut buf = Floats::from_slice(&[1.0; 40]);
        let at = buf.as_ptr();
        buf.resize(3);
        buf.resize(40);
        assert_eq!(buf.as_ptr(), at, "a shrink and a grow within the capacity moved the buffer");
        assert_eq!(&buf[..3], &[1.0; 3]);
        assert!(buf[3..].iter().all(|&x| x == 0.0), "stale values after a shrink and a grow: {:?}", &buf[..]);
    }
}
