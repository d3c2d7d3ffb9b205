//! Fused softmax cross-entropy over rows of logits, matching `shaders/softmax_xent.wgsl`.
//!
//! Fusing the loss and its gradient is what keeps the classifier stable: the row maximum is
//! subtracted before `exp`, so logits of ±1e4 give a finite loss, and `dlogits` is
//! `softmax - onehot` directly instead of a division by a probability that may be zero.

use crate::error::{Error, Result};

use super::threads::tasks;
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

/// Logits each thread must get before the split loss runs on two threads: about a
/// microsecond of `exp`s, the cost of the hand-off on the CPU backend's pool (`threads.rs`).
/// MNIST's batch of 128 rows (1280 logits) is split, one of 32 is not.
const MIN_SPLIT_LOGITS: usize = 256;

/// [`softmax_xent_into`] with the rows cut in two halves, one on each side of a
/// `rayon::join` on the CPU backend's pool (the other thread takes the second; elsewhere, or
/// with fewer than [`MIN_SPLIT_LOGITS`] logits per half, both run here): each row's
/// loss is stored in `row_loss: [rows]` and the losses are summed afterwards in row order from
/// zero, the sum [`softmax_xent_into`] makes, so the result has its bits. Used in the training
/// step, where the loss would otherwise be the one part of the step on one thread.
pub(crate) fn softmax_xent_split_into(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    scale: f32,
    dlogits: &mut [f32],
    row_loss: &mut [f32],
) -> Result<(f32, u32)> {
    let rows = labels.len();
    check_len("dlogits", dlogits.len(), elements("logits", rows, classes)?)?;
    check_len("logits", logits.len(), elements("logits", rows, classes)?)?;
    let held = row_loss.len();
    let row_loss = row_loss
        .get_mut(..rows)
        .ok_or_else(|| Error::Shape(format!("the row losses' scratch holds {held} rows, not {rows}")))?;
    check_labels(labels, classes)?;
    let h = rows / 2;
    let (z_lo, z_hi) = logits.split_at(h * classes);
    let (y_lo, y_hi) = labels.split_at(h);
    let (d_lo, d_hi) = dlogits.split_at_mut(h * classes);
    let (l_lo, l_hi) = row_loss.split_at_mut(h);
    let half = |z: &[f32], y: &[u32], d: &mut [f32], l: &mut [f32]| -> u32 {
        let rows = z.chunks_exact(classes).zip(y).zip(d.chunks_exact_mut(classes));
        let mut correct = 0;
        for (((z, &y), d), l) in rows.zip(l) {
            let (loss, hit) = xent_row(z, y as usize, scale, Some(d));
            *l = loss;
            correct += u32::from(hit);
        }
        correct
    };
    let (c_lo, c_hi) = if tasks(logits.len(), MIN_SPLIT_LOGITS, usize::MAX) > 1 {
        rayon::join(|| half(z_lo, y_lo, d_lo, l_lo), || half(z_hi, y_hi, d_hi, l_hi))
    } else {
        (half(z_lo, y_lo, d_lo, l_lo), half(z_hi, y_hi, d_hi, l_hi))
    };
    let loss_sum = row_loss.iter().fold(0.0f32, |sum, &l| sum + l);
    Ok((loss_sum, c_lo + c_hi))
}

/// A label `>= classes` is [`Error::Data`], found before any work so that an error leaves no
/// half-written gradient behind.
fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&y| y as usize >= classes) {
        Some(r) => Err(Error::Data(format!(
            "label {} of row {r} is not below the number of classes {classes}",
            labels[r]
        ))),
        None => Ok(()),
    }
}

/// The shared row loop of the loss; writes the gradient when `dlogits` is given (its length
/// has been checked by the caller). The losses are summed in f32, in row order, from zero.
fn xent_rows(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    scale: f32,
    mut dlogits: Option<&mut [f32]>,
) -> Result<(f32, u32)> {
    check_len("logits", logits.len(), elements("logits", labels.len(), classes)?)?;
    check_labels(labels, classes)?;
    let mut loss_sum = 0.0f32;
    let mut correct = 0u32;
    for (r, (z, &y)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        let d = dlogits.as_deref_mut().map(|d| &mut d[r * classes..(r + 1) * classes]);
        let (loss, hit) = xent_row(z, y as usize, scale, d);
        loss_sum += loss;
        correct += u32::from(hit);
    }
    Ok((loss_sum, correct))
}

/// One row `z: [classes]` with label `y < classes`: its loss `lse - z[y]`, whether its first
/// maximal logit is `y`, and, when `d: [classes]` is given, the gradient written into it.
fn xent_row(z: &[f32], y: usize, scale: f32, d: Option<&mut [f32]>) -> (f32, bool) {
    // First maximal index: a strict `>` keeps the earliest of tied maxima.
    let (mut argmax, mut m) = (0, z[0]);
    for (j, &v) in z.iter().enumerate().skip(1) {
        if v > m {
            argmax = j;
            m = v;
        }
    }
    // With a gradient to write, each exp(z_j - m) is computed once into it and summed from
    // there: the same values added in the same order as without.
    let sum: f32 = match d {
        Some(d) => {
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
    (lse - z[y], argmax == y)
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

    /// The loss split over two threads gives the loss, count and gradient of the one-thread
    /// loop, bit for bit, on odd and even row counts (one row: the first half is empty).
    #[test]
    fn the_split_loss_gives_the_bits_of_the_serial_loop() {
        let classes = 10;
        let mut s = 11u32;
        for rows in [1usize, 2, 31, 33, 128, 257] {
            let logits: Vec<f32> = (0..rows * classes)
                .map(|_| {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (s >> 8) as f32 / (1u32 << 24) as f32 * 30.0 - 15.0
                })
                .collect();
            let labels: Vec<u32> = (0..rows).map(|r| (r * 3 % classes) as u32).collect();
            let scale = 1.0 / rows as f32;
            let want = softmax_xent(&logits, &labels, classes, scale).unwrap();
            let mut d = vec![f32::NAN; rows * classes];
            let mut row_loss = vec![f32::NAN; rows + 3];
            let (loss, correct) = crate::cpu::threads::on_pool(|| {
                softmax_xent_split_into(&logits, &labels, classes, scale, &mut d, &mut row_loss)
            })
            .unwrap();
            assert_eq!(loss.to_bits(), want.loss_sum.to_bits(), "{rows} rows");
            assert_eq!(correct, want.correct, "{rows} rows");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&d), bits(&want.dlogits), "{rows} rows");
        }
    }

    /// A bad label or a short scratch is an error that writes nothing.
    #[test]
    fn the_split_loss_checks_before_it_writes() {
        let logits = vec![0.5f32; 4 * 3];
        let mut d = vec![7.0f32; 4 * 3];
        let mut row_loss = vec![0.0f32; 4];
        let err = softmax_xent_split_into(&logits, &[0, 1, 3, 2], 3, 1.0, &mut d, &mut row_loss);
        assert!(matches!(err, Err(Error::Data(ref m)) if m.contains("row 2")), "{err:?}");
        let err = softmax_xent_split_into(&logits, &[0, 1, 2, 2], 3, 1.0, &mut d, &mut row_loss[..3]);
        assert!(matches!(err, Err(Error::Shape(_))), "{err:?}");
        assert!(d.iter().all(|&v| v == 7.0));
    }
}
