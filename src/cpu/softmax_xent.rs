//! Fused softmax cross-entropy over rows of logits, matching `shaders/softmax_xent.wgsl`.
//!
//! Fusing the loss and its gradient is what keeps the classifier stable: the row maximum is
//! subtracted before `exp`, so logits of ±1e4 give a finite loss, and `dlogits` is
//! `softmax - onehot` directly instead of a division by a probability that may be zero.

use crate::error::{Error, Result};

use super::{check_len, elements};

/// What [`softmax_xent`] returns for a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct XentOut {
    /// `sum_r (lse_r - z[r, y_r])`, summed over rows in f32 in row order.
    pub loss_sum: f32,
    /// Rows whose first maximal logit is the label.
    pub correct: u32,
    /// `(softmax - onehot) * scale`, `[rows, classes]` row-major.
    pub dlogits: Vec<f32>,
}

/// Loss, accuracy and gradient of a batch: `logits: [rows, classes]` row-major,
/// `labels: [rows]`, `rows = labels.len()`.
///
/// Per row: `m = max_j z_j`, `lse = m + ln(sum_j exp(z_j - m))`, `loss = lse - z[y]`,
/// `dz_j = (exp(z_j - m) / sum - [j == y]) * scale`. `scale` is `1 / global_batch` so that
/// gradients are those of the mean loss over the whole (possibly split) batch. A label
/// `>= classes` is [`Error::Data`]; wrong lengths or zero sizes are [`Error::Shape`].
pub fn softmax_xent(logits: &[f32], labels: &[u32], classes: usize, scale: f32) -> Result<XentOut> {
    let mut dlogits = vec![0.0; elements("logits", labels.len(), classes)?];
    let (loss_sum, correct) = softmax_xent_into(logits, labels, classes, scale, &mut dlogits)?;
    Ok(XentOut { loss_sum, correct, dlogits })
}

/// [`softmax_xent`] writing the gradient into `dlogits: [rows, classes]`; returns
/// `(loss_sum, correct)`.
pub fn softmax_xent_into(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    scale: f32,
    dlogits: &mut [f32],
) -> Result<(f32, u32)> {
    check_len("dlogits", dlogits.len(), elements("logits", labels.len(), classes)?)?;
    xent_rows(logits, labels, classes, scale, Some(dlogits))
}

/// Loss sum and correct count only, for evaluation: no gradient buffer needed.
pub fn xent_loss(logits: &[f32], labels: &[u32], classes: usize) -> Result<(f32, u32)> {
    xent_rows(logits, labels, classes, 0.0, None)
}

/// The shared row loop of the loss; writes the gradient when `dlogits` is given (its length
/// has been checked by the caller).
fn xent_rows(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    scale: f32,
    mut dlogits: Option<&mut [f32]>,
) -> Result<(f32, u32)> {
    check_len("logits", logits.len(), elements("logits", labels.len(), classes)?)?;
    // Checked before any work so that an error leaves no half-written gradient behind.
    if let Some(r) = labels.iter().position(|&y| y as usize >= classes) {
        return Err(Error::Data(format!(
            "label {} of row {r} is not below the number of classes {classes}",
            labels[r]
        )));
    }
    let mut loss_sum = 0.0f32;
    let mut correct = 0u32;
    for (r, (z, &y)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        let y = y as usize;
        // First maximal index: a strict `>` keeps the earliest of tied maxima.
        let (mut argmax, mut m) = (0, z[0]);
        for (j, &v) in z.iter().enumerate().skip(1) {
            if v > m {
                argmax = j;
                m = v;
            }
        }
        // With a gradient to write, each exp(z_j - m) is computed once into it and summed
        // from there: the same values added in the same order as without.
        let sum: f32 = match dlogits.as_deref_mut() {
            Some(d) => {
                let d = &mut d[r * classes..(r + 1) * classes];
                for (d, &v) in d.iter_mut().zip(z) {
                    *d = (v - m).exp();
                }
                let sum = d.iter().sum();
                for (j, d) in d.iter_mut().enumerate() {
                    let onehot = if j == y { 1.0 } else { 0.0 };
                    *d = (*d / sum - onehot) * scale;
                }
                sum
            }
            None => z.iter().map(|&v| (v - m).exp()).sum(),
        };
        let lse = m + sum.ln();
        loss_sum += lse - z[y];
        correct += u32::from(argmax == y);
    }
    Ok((loss_sum, correct))
}

/// Row-wise softmax probabilities of `logits: [rows, classes]`, with the row maximum
/// subtracted first (the same stabilisation as the loss).
pub fn softmax(logits: &[f32], classes: usize) -> Result<Vec<f32>> {
    if classes == 0 || logits.is_empty() || !logits.len().is_multiple_of(classes) {
        return Err(Error::Shape(format!(
            "softmax needs logits: [rows, {classes}] with rows > 0, got {} values",
            logits.len()
        )));
    }
    let mut p = vec![0.0; logits.len()];
    for (p, z) in p.chunks_exact_mut(classes).zip(logits.chunks_exact(classes)) {
        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = z.iter().map(|&v| (v - m).exp()).sum();
        for (p, &v) in p.iter_mut().zip(z) {
            *p = (v - m).exp() / sum;
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The training path sums the exponentials it stored in the gradient, the evaluation path
    /// sums them as it computes them: the same values in the same order, so the same loss bits.
    #[test]
    fn training_and_evaluation_paths_give_the_same_loss_bits() {
        let mut s = 7u32;
        let logits: Vec<f32> = (0..37 * 11)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 * 20.0 - 10.0
            })
            .collect();
        let labels: Vec<u32> = (0..37).map(|r| (r * 7 % 11) as u32).collect();
        let out = softmax_xent(&logits, &labels, 11, 1.0 / 37.0).unwrap();
        let (loss, correct) = xent_loss(&logits, &labels, 11).unwrap();
        assert_eq!(out.loss_sum.to_bits(), loss.to_bits());
        assert_eq!(out.correct, correct);
    }
}
