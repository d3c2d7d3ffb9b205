//! Seeded index splits: hold out a validation set once, reshuffle the training order each epoch.
//! Everything is driven by `Pcg64Mcg` so that a seed reproduces a run exactly.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::error::{Error, Result};

/// Indices into a data set, each list sorted ascending and disjoint from the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Indices to train on; never empty.
    pub train: Vec<u32>,
    /// Held-out indices for validation; empty when the fraction rounds to zero.
    pub val: Vec<u32>,
}

/// Splits `0..n` at random: `round(n * fraction)` indices go to `val`, the rest to `train`.
///
/// The draw is a Fisher-Yates shuffle seeded with `Pcg64Mcg::seed_from_u64(seed)`, so a seed
/// always gives the same split. Both lists are sorted so that gathering them reads memory in
/// order. [`Error::Config`] if `fraction` is not finite or not in `[0, 1)`, if `n` does not
/// fit in `u32`, or if no training index would be left.
pub fn validation_split(n: usize, fraction: f32, seed: u64) -> Result<Split> {
    if !fraction.is_finite() || !(0.0..1.0).contains(&fraction) {
        return Err(Error::Config(format!(
            "validation fraction {fraction} must be in [0, 1), e.g. 0.1 for 10%"
        )));
    }
    let n32 = u32::try_from(n)
        .map_err(|_| Error::Config(format!("{n} samples is more than the u32 indices can address")))?;
    // f64: n * fraction in f32 loses whole samples beyond 2^24.
    let n_val = (n as f64 * fraction as f64).round() as usize;
    if n_val >= n {
        return Err(Error::Config(format!(
            "a validation fraction of {fraction} of {n} samples leaves no training samples"
        )));
    }
    let mut order: Vec<u32> = (0..n32).collect();
    order.shuffle(&mut Pcg64Mcg::seed_from_u64(seed));
    let mut train = order.split_off(n_val);
    let mut val = order;
    train.sort_unstable();
    val.sort_unstable();
    Ok(Split { train, val })
}

/// A shuffled copy of `indices`: the training order of one epoch.
pub fn shuffled(indices: &[u32], rng: &mut Pcg64Mcg) -> Vec<u32> {
    let mut order = indices.to_vec();
    order.shuffle(rng);
    order
}
