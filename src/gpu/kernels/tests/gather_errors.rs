//! The batch gather (bit for bit against the CPU's lookup), the shape errors of every kernel
//! wrapper, and grids past 65535 workgroups, on lavapipe.
//!
//! The last two tests drive grids past 65535 workgroups in one dimension; they accept either
//! a refusal (`Err`) or a correct result.
//!
//! Tolerances: see the module header of `gpu/kernels/tests/common.rs` (u, RTOL, EPS_ONE, FLUSH and
//! the bound used for each kind of kernel).

use super::common::*;
use super::*;
use crate::gpu::kernels::{
    pack_pixels, pixel_lut_buffer, submit, GatherSources, GatherStep, OptimBuffers, TargetSources,
    ValueSources, XentCall,
};
use crate::spec::pixel_lut;
use crate::spec::Activation;
use crate::spec::Optimizer;

// ---------------------------------------------------------------- gather

/// A batch of f32 rows assembled on the device is the table's rows, bit for bit (NaN-free but
/// with negative zeros, subnormals and huge values, which a conversion would change), labels
/// exactly, at odd widths and offsets; the same dispatch replayed after rewriting the step
/// gathers the next batch.
#[test]
fn gather_values_copies_the_permuted_rows_exactly() {
    let _serial = serial();
    let f = fixture();
    for (features, x_off) in [(13usize, 3usize), (64, 0), (1, 1), (130, 4)] {
        let case = format!("features={features} x_off={x_off}");
        let rows_in_table = 50;
        let mut values = random(rows_in_table * features, features as u64);
        for (i, v) in values.iter_mut().enumerate().step_by(11) {
            *v = [-0.0, f32::MIN_POSITIVE / 8.0, 3.0e38, -1.5e-39][i % 4];
        }
        let labels: Vec<u32> = (0..rows_in_table as u32).map(|i| (i * 7 + 2) % 1000).collect();
        let perm: Vec<u32> =
            (0..rows_in_table as u32).map(|i| (i * 37 + 11) % rows_in_table as u32).collect();
        let (valb, lb, permb) =
            (upload(&f.gpu, &values), upload_u32(&f.gpu, &labels), upload_u32(&f.gpu, &perm));
        let step = uniform_buffer(&f.gpu, 16);
        let rows = 13;
        let xb = upload(&f.gpu, &padded(&vec![0.0; rows * features], x_off));
        let yb = upload_u32(&f.gpu, &vec![u32::MAX; rows + 1]);
        let src = ValueSources { values: &valb, features, labels: &lb, perm: &permb, step: &step };
        let d = f.kernels.gather_values.record(&f.gpu, rows, &src, (&xb, x_off), &yb).expect("record");
        for start in [5usize, 37] {
            f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep::new(start, 0, 0)));
            submit(&f.gpu, &[&d]);
            let (x, pad) = split_padded(&read(&f.gpu, &xb, rows * features + 2 * x_off), x_off);
            assert_untouched(&format!("gather_values x, {case}"), &pad);
            let y = f.gpu.read::<u32>(&yb, 0, rows + 1).expect("read labels");
            for r in 0..rows {
                let row = perm[start + r] as usize;
                let want: Vec<u32> =
                    values[row * features..(row + 1) * features].iter().map(|v| v.to_bits()).collect();
                let got: Vec<u32> = x[r * features..(r + 1) * features].iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{case} start={start}: row {r} (table row {row})");
                assert_eq!(y[r], labels[row], "{case} start={start}: label of row {r}");
            }
            assert_eq!(y[rows], u32::MAX, "{case}: the label past the batch is untouched");
        }
    }
}

/// The f32 regression targets of a permuted batch are copied bit for bit (subnormals, -0 and
/// huge values included), for one and several outputs, and nothing past the batch is written.
#[test]
fn gather_targets_copies_the_permuted_targets_exactly() {
    let _serial = serial();
    let f = fixture();
    for outputs in [1usize, 3, 7] {
        let rows_in_table = 50;
        let mut targets = random(rows_in_table * outputs, 100 + outputs as u64);
        for (i, v) in targets.iter_mut().enumerate().step_by(5) {
            *v = [-0.0, f32::MIN_POSITIVE / 8.0, 3.0e38, -1.5e-39][i % 4];
        }
        let perm: Vec<u32> =
            (0..rows_in_table as u32).map(|i| (i * 37 + 11) % rows_in_table as u32).collect();
        let (tb, permb, step) =
            (upload(&f.gpu, &targets), upload_u32(&f.gpu, &perm), uniform_buffer(&f.gpu, 16));
        let rows = 13;
        let yb = upload(&f.gpu, &vec![SENTINEL; (rows + 1) * outputs]);
        let src = TargetSources { targets: &tb, outputs, perm: &permb, step: &step };
        let d = f.kernels.gather_targets.record(&f.gpu, rows, &src, &yb).expect("record");
        for start in [5usize, 37] {
            f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep::new(start, 0, 0)));
            submit(&f.gpu, &[&d]);
            let y = read(&f.gpu, &yb, (rows + 1) * outputs);
            for r in 0..rows {
                let row = perm[start + r] as usize;
                let want: Vec<u32> =
                    targets[row * outputs..(row + 1) * outputs].iter().map(|v| v.to_bits()).collect();
                let got: Vec<u32> = y[r * outputs..(r + 1) * outputs].iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "outputs={outputs} start={start}: row {r} (table row {row})");
            }
            assert_untouched(&format!("outputs={outputs}: past the batch"), &y[rows * outputs..]);
        }
        assert!(f.kernels.gather_targets.record(&f.gpu, rows + 1, &src, &yb).is_ok(), "exactly fits");
        assert!(f.kernels.gather_targets.record(&f.gpu, 4 * rows, &src, &yb).is_err(), "past the output");
    }
}

/// A batch assembled on the device equals the CPU's `lut[pixel]` bit for bit, labels exactly;
/// the same dispatch replayed after rewriting the step uniform gathers the next batch.
/// Cases `(features, extra words per image, x offset)`: a full MNIST row at an odd offset
/// (scalar kernel) and at an aligned one (gather_vec4.wgsl); 7 features, whose last word has
/// a padding byte; and images stored with a spare word (`words > features / 4`, which
/// `GatherSources` allows), filled with 0xdeadbeef that must never reach x.
#[test]
fn gather_copies_the_permuted_batch_exactly() {
    let _serial = serial();
    let f = fixture();
    let lut = pixel_lut();
    for (features, extra, x_off) in [(784usize, 0usize, 3usize), (784, 0, 4), (7, 0, 3), (8, 1, 4), (8, 1, 3)]
    {
        let case = format!("features={features} extra words={extra} x_off={x_off}");
        let images = 50;
        let pixels: Vec<u8> = (0..images * features).map(|i| ((i * 7919 + i / 13) % 256) as u8).collect();
        let labels: Vec<u32> = (0..images as u32).map(|i| (i * 3 + 1) % 10).collect();
        // A permutation of the images (37 is coprime with 50).
        let perm: Vec<u32> = (0..images as u32).map(|i| (i * 37 + 11) % images as u32).collect();
        let (tight, tight_words) = pack_pixels(&pixels, features);
        assert_eq!(tight_words, features.div_ceil(4), "pack_pixels: words per image");
        let words = tight_words + extra;
        let packed: Vec<u32> = tight
            .chunks_exact(tight_words)
            .flat_map(|img| img.iter().copied().chain(std::iter::repeat_n(0xdead_beef, extra)))
            .collect();
        let (pixb, lb, permb) =
            (upload_u32(&f.gpu, &packed), upload_u32(&f.gpu, &labels), upload_u32(&f.gpu, &perm));
        let lutb = pixel_lut_buffer(&f.gpu).expect("lut");
        let step = uniform_buffer(&f.gpu, 16);
        let rows = 13;
        let xb = upload(&f.gpu, &padded(&vec![0.0; rows * features], x_off));
        let yb = upload_u32(&f.gpu, &vec![u32::MAX; rows + 1]);
        let src = GatherSources {
            pixels: &pixb,
            words,
            features,
            labels: &lb,
            perm: &permb,
            lut: &lutb,
            step: &step,
        };
        let d = f.kernels.gather.record(&f.gpu, rows, &src, (&xb, x_off), &yb).expect("record");
        for start in [5usize, 37] {
            f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep::new(start, 0, 0)));
            submit(&f.gpu, &[&d]);
            let (x, pad) = split_padded(&read(&f.gpu, &xb, rows * features + 2 * x_off), x_off);
            assert_untouched(&format!("gather x, {case} ({})", d.label()), &pad);
            let y = f.gpu.read::<u32>(&yb, 0, rows + 1).expect("read labels");
            for r in 0..rows {
                let image = perm[start + r] as usize;
                let want: Vec<u32> = pixels[image * features..(image + 1) * features]
                    .iter()
                    .map(|&p| lut[p as usize].to_bits())
                    .collect();
                let got: Vec<u32> = x[r * features..(r + 1) * features].iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{case} start={start} ({}): row {r} (image {image})", d.label());
                assert_eq!(y[r], labels[image], "{case} start={start}: label of row {r}");
            }
            assert_eq!(y[rows], u32::MAX, "{case}: the label past the batch was written");
        }
    }
}

// ---------------------------------------------------------------- shape errors

/// Zero sizes and buffers too small are `Err` from every wrapper, never a panic or a GPU
/// validation error. (Buffers are allocated in 16-byte units, so "too small" asks for more
/// than the rounded-up size.)
#[test]
fn shape_errors_are_errors() {
    let _serial = serial();
    let f = fixture();
    let (g, k) = (&f.gpu, &f.kernels);
    let b16 = zeros(g, 16);
    let act = Activation::Tanh;
    let checks: Vec<(&str, bool)> = vec![
        ("activation of length 0", k.activation.forward(g, act, 0, (&b16, 0), (&b16, 0)).is_err()),
        (
            "activation past the input",
            k.activation.forward(g, act, 17, (&b16, 0), (&zeros(g, 32), 0)).is_err(),
        ),
        (
            "activation past the output via offset",
            k.activation.forward(g, act, 16, (&zeros(g, 32), 0), (&b16, 1)).is_err(),
        ),
        (
            "activation backward past z",
            k.activation.backward(g, act, 20, (&zeros(g, 32), 0), (&b16, 0), (&zeros(g, 32), 0)).is_err(),
        ),
        ("column sums of 0 rows", k.reduce.column_sums(g, 0, 4, (&b16, 0), (&b16, 0)).is_err()),
        ("column sums past the input", k.reduce.column_sums(g, 5, 4, (&b16, 0), (&b16, 0)).is_err()),
        ("column sums past the output", k.reduce.column_sums(g, 1, 8, (&b16, 0), (&b16, 10)).is_err()),
        ("scale of length 0", k.reduce.scale(g, 0, 2.0, (&b16, 0)).is_err()),
        ("scale past the buffer", k.reduce.scale(g, 16, 2.0, (&b16, 1)).is_err()),
        (
            "add_scaled past the input",
            k.reduce.add_scaled(g, 17, 2.0, (&b16, 0), (&zeros(g, 32), 0)).is_err(),
        ),
    ];
    for (what, is_err) in checks {
        assert!(is_err, "{what} must be an Err");
    }

    let labels = upload_u32(g, &[0; 4]);
    let (metrics, dl16) = (zeros(g, 16), zeros(g, 16));
    let xent = |rows, classes, dl: Option<&wgpu::Buffer>, metrics_off| {
        k.xent
            .record(
                g,
                &XentCall {
                    rows,
                    classes,
                    logits: (&b16, 0),
                    labels: (&labels, 0),
                    dlogits: dl.map(|d| (d, 0)),
                    scale: 1.0,
                    metrics: (&metrics, metrics_off),
                },
            )
            .is_err()
    };
    assert!(xent(0, 4, None, 0), "softmax_xent of 0 rows must be an Err");
    assert!(xent(4, 1, None, 0), "softmax_xent of one class must be an Err");
    assert!(xent(4, 5, None, 0), "softmax_xent past the logits must be an Err");
    assert!(xent(4, 4, Some(&zeros(g, 8)), 0), "softmax_xent past dlogits must be an Err");
    assert!(xent(8, 2, None, 0), "softmax_xent past the labels must be an Err");
    assert!(xent(2, 2, None, 15), "softmax_xent metrics past the buffer must be an Err");
    assert!(!xent(4, 4, Some(&dl16), 14), "a fitting softmax_xent call is Ok");

    let step = uniform_buffer(g, 32);
    let adam = Optimizer::adam(1e-3);
    let optim = |len, small: &wgpu::Buffer| {
        k.optim
            .record(
                g,
                &adam,
                len,
                &OptimBuffers { params: &b16, grads: &b16, m: small, v: &b16, step: &step },
            )
            .is_err()
    };
    assert!(optim(0, &b16), "an optimizer over 0 parameters must be an Err");
    // The step uniform is bound as 32 bytes: a shorter or non-uniform buffer is an Err.
    for (why, bad_step) in [("16 bytes", uniform_buffer(g, 16)), ("a storage buffer", zeros(g, 8))] {
        let b = OptimBuffers { params: &b16, grads: &b16, m: &b16, v: &b16, step: &bad_step };
        assert!(
            k.optim.record(g, &adam, 16, &b).is_err(),
            "an optimizer step uniform of {why} must be an Err"
        );
    }
    assert!(optim(16, &zeros(g, 8)), "an optimizer with a short moment buffer must be an Err");
    assert!(!optim(16, &b16), "a fitting optimizer call is Ok");

    let pix = upload_u32(g, &[0; 8]);
    let gstep = uniform_buffer(g, 16);
    let lut = pixel_lut_buffer(g).expect("lut");
    let (perm, y4) = (upload_u32(g, &[0; 4]), upload_u32(g, &[0; 4]));
    let gather = |rows, features, words, x: &wgpu::Buffer, x_off| {
        let src = GatherSources {
            pixels: &pix,
            words,
            features,
            labels: &labels,
            perm: &perm,
            lut: &lut,
            step: &gstep,
        };
        k.gather.record(g, rows, &src, (x, x_off), &y4).is_err()
    };
    assert!(gather(0, 4, 1, &b16, 0), "a gather of 0 rows must be an Err");
    assert!(gather(2, 0, 1, &b16, 0), "a gather of 0 features must be an Err");
    assert!(gather(2, 9, 2, &b16, 0), "9 features do not fit 2 words: must be an Err");
    assert!(gather(2, 8, 2, &b16, 1), "a gather past x must be an Err");
    assert!(gather(5, 1, 1, &zeros(g, 64), 0), "a gather past the label output must be an Err");
    assert!(!gather(2, 8, 2, &b16, 0), "a fitting gather is Ok");
    let short_step = uniform_buffer(g, 4);
    let src = GatherSources {
        pixels: &pix,
        words: 2,
        features: 8,
        labels: &labels,
        perm: &perm,
        lut: &lut,
        step: &short_step,
    };
    assert!(
        k.gather.record(g, 2, &src, (&b16, 0), &y4).is_err(),
        "a 4-byte gather step uniform must be an Err"
    );
    // None of the calls above may have left an uncaptured GPU error behind.
    g.check().expect("no GPU error escaped");
}

// ---------------------------------------------------------------- grids past 65535 workgroups

/// More columns than 65535 workgroups of 256 cover: `grid_1d` folds the grid into y, and the
/// kernel must then rebuild the column from `num_workgroups` as the element-wise kernels do.
/// (Refusing the shape with an `Err` would also be a correct answer.)
#[test]
fn column_sums_cover_a_folded_grid() {
    let _serial = serial();
    let f = fixture();
    // One row keeps the input (67 MB) under lavapipe's 128 MiB binding limit.
    let (rows, cols) = (1, 65_535 * 256 + 1000);
    let x = random(rows * cols, 5);
    let xb = upload(&f.gpu, &x);
    let ob = upload(&f.gpu, &vec![SENTINEL; cols]);
    let Ok(d) = f.kernels.reduce.column_sums(&f.gpu, rows, cols, (&xb, 0), (&ob, 0)) else { return };
    submit(&f.gpu, &[&d]);
    let got = read(&f.gpu, &ob, cols);
    // One row: its sum is the row itself, exactly (0 + x rounds to x).
    assert_close(&format!("column sums {rows}x{cols}"), &got, &x, |_| 0.0);
}

/// A batch of more than 4 x 65535 rows needs more workgroups in y than a dispatch allows:
/// `Gather::record` must either refuse it or gather every row (not record a dispatch that
/// fails validation on submit).
#[test]
fn gather_of_more_rows_than_one_dispatch_covers() {
    let _serial = serial();
    let f = fixture();
    let rows = 65_535 * 4 + 8;
    let lut = pixel_lut();
    // Three one-pixel images; row r is image r % 3.
    let (pix, labels) = (upload_u32(&f.gpu, &[10, 20, 30]), upload_u32(&f.gpu, &[3, 4, 5]));
    let perm = upload_u32(&f.gpu, &(0..rows as u32).map(|i| i % 3).collect::<Vec<_>>());
    let (lutb, step) = (upload(&f.gpu, &lut), uniform_buffer(&f.gpu, 16));
    f.gpu.write(&step, 0, bytemuck::bytes_of(&GatherStep::default()));
    let (xb, yb) = (zeros(&f.gpu, rows), upload_u32(&f.gpu, &vec![u32::MAX; rows]));
    let src = GatherSources {
        pixels: &pix,
        words: 1,
        features: 1,
        labels: &labels,
        perm: &perm,
        lut: &lutb,
        step: &step,
    };
    let Ok(d) = f.kernels.gather.record(&f.gpu, rows, &src, (&xb, 0), &yb) else { return };
    submit(&f.gpu, &[&d]);
    let y = f.gpu.read::<u32>(&yb, 0, rows).expect("the recorded gather must run");
    let x = read(&f.gpu, &xb, rows);
    for r in 0..rows {
        assert_eq!(
            (x[r].to_bits(), y[r]),
            (lut[[10, 20, 30][r % 3]].to_bits(), 3 + (r % 3) as u32),
            "row {r} of {rows}"
        );
    }
}
