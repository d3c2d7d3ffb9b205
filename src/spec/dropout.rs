//! Which elements a dropout layer keeps: a pure function of (seed, optimizer step, layer,
//! row, unit), so that the CPU and GPU executors draw the same masks bit for bit and a run
//! is reproduced by its seed alone.
//!
//! The generator is Philox-4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers:
//! as easy as 1, 2, 3", SC 2011; the Random123 library's `philox4x32_R(10, ...)`), a
//! counter-based generator: ten rounds of two 32x32->64-bit multiplies turn a 128-bit counter
//! and a 64-bit key into four independent 32-bit words, with no state carried from one call to
//! the next. Here the key is the layer's seed and the counter is
//! `(row, unit / 4, step, layer)`; word `unit % 4` decides unit `unit`. An element is kept when
//! that word is at least [`DropoutMask::threshold`], `round(rate * 2^32)`: integer arithmetic
//! only, so the decision has no rounding to disagree on. `shaders/dropout.wgsl` is the same
//! function in WGSL.
//!
//! `row` is the row's position in the *global* batch: a replica of a mirrored step that
//! computes rows `first..first + share` of the batch passes `first` as its row base, so
//! splitting a batch across devices draws the masks one device would. `step` is the 1-based
//! optimizer step the gradient is for, taken modulo 2^32.

use super::Layer;

/// Philox-4x32's multipliers and Weyl key increments (Random123, `philox.h`).
const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// The high and low halves of the 64-bit product `a * b`.
#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// Philox-4x32 with 10 rounds: four 32-bit words from a 128-bit counter and a 64-bit key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(PHILOX_W0), k[1].wrapping_add(PHILOX_W1)];
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The masks of one dropout layer at one optimizer step: everything but the row and unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    /// Philox's key: the layer's seed, low word first.
    pub key: [u32; 2],
    /// The optimizer step (1-based, modulo 2^32).
    pub step: u32,
    /// The layer's index in the network's list (every layer counted).
    pub layer: u32,
    /// An element is kept when its word is at least this: `round(rate * 2^32)`.
    pub threshold: u32,
    /// `1 / (1 - rate)` in f32, computed once: the kept elements' scale on every executor.
    pub scale: f32,
}

impl DropoutMask {
    /// The masks of dropout layer `layer` (its index in the network) with `rate` and `seed`
    /// at optimizer step `step`. `rate` is in `[0, 1)` ([`super::Network::validate`]).
    pub fn new(rate: f32, seed: u64, layer: usize, step: u64) -> Self {
        DropoutMask {
            key: [seed as u32, (seed >> 32) as u32],
            step: step as u32,
            layer: layer as u32,
            threshold: Self::threshold(rate),
            scale: 1.0 / (1.0 - rate),
        }
    }

    /// The masks of `layer` (at index `l`) at `step`, or `None` for a layer that is not a
    /// dropout.
    pub fn of_layer(layer: &Layer, l: usize, step: u64) -> Option<Self> {
        match *layer {
            Layer::Dropout { rate, seed } => Some(DropoutMask::new(rate, seed, l, step)),
            Layer::Dense { .. } => None,
        }
    }

    /// `round(rate * 2^32)`, the keep threshold: the probability of keeping an element is
    /// `1 - threshold / 2^32`, within 2^-33 of `1 - rate`. A rate below 1 in f32 is at most
    /// `1 - 2^-24`, so the threshold fits in a u32 (at most `2^32 - 256`).
    pub fn threshold(rate: f32) -> u32 {
        let t = (f64::from(rate.clamp(0.0, 1.0)) * 4_294_967_296.0).round();
        t.min(f64::from(u32::MAX)) as u32
    }

    /// The four random words of units `4 * quad .. 4 * quad + 4` of global row `row`.
    #[inline]
    pub fn words(&self, row: u32, quad: u32) -> [u32; 4] {
        philox4x32_10([row, quad, self.step, self.layer], self.key)
    }

    /// Whether unit `unit` of global row `row` is kept.
    pub fn keeps(&self, row: u32, unit: u32) -> bool {
        self.words(row, unit / 4)[(unit % 4) as usize] >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for philox4x32 with 10 rounds (`kat_vectors`): zeros,
    /// all ones, and the digits of pi.
    #[test]
    fn philox_matches_random123_known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            ([0; 4], [0; 2], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, want) in cases {
            assert_eq!(philox4x32_10(counter, key), want, "counter {counter:x?} key {key:x?}");
        }
    }

    /// The threshold's edges: rate 0 keeps every word, 0.5 keeps the upper half, the largest
    /// f32 below 1 still keeps 256 words in 2^32.
    #[test]
    fn thresholds_at_the_edges() {
        assert_eq!(DropoutMask::threshold(0.0), 0);
        assert_eq!(DropoutMask::threshold(0.5), 1 << 31);
        let below_one = f32::from_bits(1.0f32.to_bits() - 1);
        assert_eq!(DropoutMask::threshold(below_one), u32::MAX - 255);
        assert_eq!(DropoutMask::new(0.5, 0, 0, 1).scale, 2.0);
    }
}

#[cfg(test)]
mod statistics {
    use super::*;

    /// The keep decisions of `[rows, units]` at `mask`, rows from 0.
    fn keeps(mask: &DropoutMask, rows: usize, units: usize) -> Vec<bool> {
        (0..rows * units).map(|i| mask.keeps((i / units) as u32, (i % units) as u32)).collect()
    }

    /// Pearson's correlation of the pairs `(a[i], b[i])`; 0 when either is constant.
    fn correlation(a: &[bool], b: &[bool]) -> f64 {
        let n = a.len() as f64;
        let (pa, pb) =
            (a.iter().filter(|&&v| v).count() as f64 / n, b.iter().filter(|&&v| v).count() as f64 / n);
        let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count() as f64 / n;
        let var = (pa * (1.0 - pa) * pb * (1.0 - pb)).sqrt();
        if var == 0.0 {
            0.0
        } else {
            (both - pa * pb) / var
        }
    }

    /// The fraction kept over 1757 x 37 = 65 009 elements is binomial: within 6 standard
    /// deviations, `6 sqrt(p (1 - p) / n)`, of `p = 1 - rate` (a false alarm about once in
    /// 5e8 runs, and the draws are fixed, so it never flakes). Neighbouring units, rows,
    /// steps and layers are independent draws: their sample correlation is about N(0, 1/n)
    /// under independence, so each must be within `6 / sqrt(n)`.
    #[test]
    fn the_fraction_kept_is_binomial_and_neighbours_are_uncorrelated() {
        let (rows, units) = (1757usize, 37usize);
        for rate in [0.1f32, 0.3, 0.5, 0.9] {
            let mask = DropoutMask::new(rate, 77, 2, 5);
            let k = keeps(&mask, rows, units);
            let n = k.len() as f64;
            let p = 1.0 - f64::from(rate);
            let kept = k.iter().filter(|&&v| v).count() as f64 / n;
            let bound = 6.0 * (p * (1.0 - p) / n).sqrt();
            assert!((kept - p).abs() <= bound, "rate {rate}: kept {kept}, expected {p} +- {bound}");

            let right: Vec<(bool, bool)> = (0..rows)
                .flat_map(|r| (0..units - 1).map(move |u| (r, u)))
                .map(|(r, u)| (k[r * units + u], k[r * units + u + 1]))
                .collect();
            let below: Vec<(bool, bool)> = (0..(rows - 1) * units).map(|i| (k[i], k[i + units])).collect();
            let next_step = keeps(&DropoutMask::new(rate, 77, 2, 6), rows, units);
            let next_layer = keeps(&DropoutMask::new(rate, 77, 3, 5), rows, units);
            let other_seed = keeps(&DropoutMask::new(rate, 78, 2, 5), rows, units);
            let unzip = |v: &[(bool, bool)]| -> (Vec<bool>, Vec<bool>) { v.iter().copied().unzip() };
            let (a, b) = unzip(&right);
            let (c, d) = unzip(&below);
            for (what, x, y) in [
                ("neighbouring units", &a, &b),
                ("neighbouring rows", &c, &d),
                ("the next step", &k, &next_step),
                ("the next layer", &k, &next_layer),
                ("another seed", &k, &other_seed),
            ] {
                let r = correlation(x, y);
                let bound = 6.0 / (x.len() as f64).sqrt();
                assert!(r.abs() <= bound, "rate {rate}: {what} correlate, r = {r} (bound {bound})");
            }
            assert_ne!(k, next_step, "rate {rate}: the next step draws the same mask");
        }
    }
}
