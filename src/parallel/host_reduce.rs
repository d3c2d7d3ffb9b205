//! The host-side gradient reduction into the shared staging buffer: `out[i] = sum_r part_r[i]`
//! in replica order (so every run and every replica sees the same bits), parallel over
//! chunks of `i` with rayon, allocating nothing.
//!
//! Each replica's gradient is already scaled by `1 / global batch` (the loss is the mean
//! over the global batch), so the plain sum is the shard-size-weighted average.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::exec::GradientReducer;

/// Chunk of parameters per rayon task: large enough that scheduling costs little.
const CHUNK: usize = 16 * 1024;

/// Sums `parts` element-wise into `out`.
pub fn reduce_into(out: &mut [f32], parts: &[&[f32]]) -> Result<()> {
    if let Some(p) = parts.iter().find(|p| p.len() != out.len()) {
        return Err(Error::Shape(format!("a replica sent {} gradients, {} expected", p.len(), out.len())));
    }
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
        let base = c * CHUNK;
        let len = chunk.len();
        chunk.fill(0.0);
        for part in parts {
            for (o, g) in chunk.iter_mut().zip(&part[base..base + len]) {
                *o += *g;
            }
        }
    });
    Ok(())
}

/// The reduction of replicas in one process: [`reduce_into`] on the host, over the mapped
/// staging buffers.
pub(crate) struct HostReducer;

impl GradientReducer for HostReducer {
    fn reduce(&mut self, parts: &[&[f32]], out: &mut [f32]) -> Result<()> {
        reduce_into(out, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_sums_in_replica_order() {
        let a: Vec<f32> = (0..40_000).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..40_000).map(|i| -(i as f32) * 0.25 + 1e-3).collect();
        let mut out = vec![f32::NAN; 40_000];
        reduce_into(&mut out, &[&a, &b]).unwrap();
        for i in 0..40_000 {
            assert_eq!(out[i].to_bits(), (0.0f32 + a[i] + b[i]).to_bits(), "element {i}");
        }
        let short = vec![0.0; 3];
        assert!(reduce_into(&mut out, &[&a, &short]).is_err(), "a short part is an error");
    }
}
