//! The fused softmax head against the two launches it replaces (the product with the bias
//! epilogue, then softmax cross-entropy) bit for bit, and its logits against the CPU
//! reference, on lavapipe at awkward shapes: a single row, a partial chunk of 256 rows, two
//! chunks; widths 3, 10, 17; dot products of 5, 64 and 130.
//!
//! Why bits, not a tolerance: the fused kernel performs the same f32 operations in the same
//! order as the two launches (`shaders/softmax_head.wgsl`'s header), so any difference is a
//! defect. The CPU comparison uses `matmul_epilogue.rs`'s product bound.

use super::common::*;
use super::*;
use crate::cpu;
use crate::gpu::kernels::{head_fits, submit, HeadCall, MatmulCall, Packed, Variant, XentCall};
use crate::ops::MatmulForm;
use crate::spec::Activation;

/// Floats of padding before each operand, so that offsets are exercised.
const PAD: usize = 3;

/// Buffers of one head case: h at PAD, W at PAD and b after it (in one buffer, as the flat
/// parameters hold them), labels at 1, and metrics at 2 of six floats that start at
/// sentinels around `[0.25, 3.0]` (so that `+=` is exercised too).
struct Case {
    rows: usize,
    n: usize,
    k: usize,
    h: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    labels: Vec<u32>,
}

impl Case {
    fn new(rows: usize, n: usize, k: usize, seed: u64) -> Case {
        let picks = random(rows, seed + 3);
        Case {
            rows,
            n,
            k,
            h: random(rows * k, seed),
            // Weights of 2 / sqrt(k): logits of order 1-3, so the softmax is not flat.
            w: random(k * n, seed + 1).iter().map(|v| v * 2.0 / (k as f32).sqrt()).collect(),
            b: random(n, seed + 2),
            labels: picks.iter().map(|p| (((p + 1.0) * 0.5 * n as f32) as usize).min(n - 1) as u32).collect(),
        }
    }
}

/// What a path wrote: logits, dlogits (empty for evaluation) and the two metrics.
#[derive(Debug, PartialEq)]
struct Out {
    logits: Vec<u32>,
    dlogits: Vec<u32>,
    metrics: Vec<u32>,
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs the case fused (`variant: None`) or as a matmul (`variant`, or the tuner's pick when
/// `Some(None)`) followed by softmax_xent; `grad`: training (writes dlogits).
fn run(c: &Case, variant: Option<Option<Variant>>, grad: bool) -> Out {
    let f = fixture();
    let (rows, n, k) = (c.rows, c.n, c.k);
    let hb = upload(&f.gpu, &padded(&c.h, PAD));
    let bias_off = PAD + k * n + 1;
    let params = upload(&f.gpu, &padded(&[c.w.clone(), vec![SENTINEL], c.b.clone()].concat(), PAD));
    let logits = upload(&f.gpu, &padded(&vec![0.0; rows * n], PAD));
    let dlogits = upload(&f.gpu, &padded(&vec![0.0; rows * n], PAD));
    let yb = upload_u32(&f.gpu, &[vec![7u32], c.labels.clone()].concat());
    let metrics = upload(&f.gpu, &[SENTINEL, SENTINEL, 0.25, 3.0, SENTINEL, SENTINEL]);
    let scale = 1.0 / rows as f32;
    let dl = grad.then_some((&dlogits, PAD));
    let dispatches = match variant {
        None => {
            let call = HeadCall {
                rows,
                classes: n,
                k,
                h: (&hb, PAD),
                params: (&params, PAD),
                bias: bias_off,
                logits: (&logits, PAD),
                labels: (&yb, 1),
                dlogits: dl,
                scale,
                metrics: (&metrics, 2),
            };
            vec![f.kernels.head.record(&f.gpu, &call).expect("record head")]
        }
        Some(v) => {
            let mm = MatmulCall {
                form: MatmulForm::AB,
                m: rows,
                n,
                k,
                a: (&hb, PAD),
                b: (&params, PAD),
                c: (&logits, PAD),
                bias: Some(bias_off),
                act: Activation::Identity,
                z: None,
                act_backward: false,
            };
            let product = match v {
                Some(v) => f.kernels.matmul.record_with(&f.gpu, v, &mm, Packed::NONE),
                None => f.kernels.matmul_with(&f.gpu, &mm, Packed::NONE),
            };
            let xent = XentCall {
                rows,
                classes: n,
                logits: (&logits, PAD),
                labels: (&yb, 1),
                dlogits: dl,
                scale,
                metrics: (&metrics, 2),
            };
            vec![product.expect("record product"), f.kernels.xent.record(&f.gpu, &xent).expect("record xent")]
        }
    };
    submit(&f.gpu, &dispatches.iter().collect::<Vec<_>>());
    let total = rows * n + 2 * PAD;
    let (l, pad) = split_padded(&read(&f.gpu, &logits, total), PAD);
    assert_untouched("around the logits", &pad);
    let (d, pad) = split_padded(&read(&f.gpu, &dlogits, total), PAD);
    assert_untouched("around the dlogits", &pad);
    let m = read(&f.gpu, &metrics, 6);
    assert_untouched("around the metrics", &[&m[..2], &m[4..]].concat());
    Out { logits: bits(&l), dlogits: if grad { bits(&d) } else { Vec::new() }, metrics: bits(&m[2..4]) }
}

/// Fused = tuner's product + softmax_xent = naive product + softmax_xent, bit for bit, for
/// training and evaluation; and the logits within the product bound of `cpu::matmul` +
/// `add_bias`.
#[test]
fn softmax_head_gives_the_bits_of_the_product_and_softmax_xent() {
    let _serial = serial();
    // Partial blocks and chunks; two chunks (300, 512 rows); two blocks per invocation (256 x 32).
    let shapes = [
        (1, 3, 5),
        (7, 10, 64),
        (129, 17, 130),
        (128, 10, 64),
        (300, 10, 5),
        (7, 17, 130),
        (1, 10, 130),
        (256, 32, 64),
        (512, 10, 7),
    ];
    for (s, &(rows, n, k)) in shapes.iter().enumerate() {
        assert!(head_fits(rows, n), "{rows}x{n} should run fused");
        let c = Case::new(rows, n, k, 900 + 10 * s as u64);
        let name = format!("rows={rows} n={n} k={k}");
        for grad in [true, false] {
            let fused = run(&c, None, grad);
            assert_eq!(fused, run(&c, Some(None), grad), "{name} grad={grad}: fused vs tuned product + xent");
            assert_eq!(
                fused,
                run(&c, Some(Some(Variant::Naive)), grad),
                "{name} grad={grad}: vs naive + xent"
            );
        }
        let fused = run(&c, None, true);
        let logits: Vec<f32> = fused.logits.iter().map(|&b| f32::from_bits(b)).collect();
        let mut want = cpu::matmul(MatmulForm::AB, rows, n, k, &c.h, &c.w).expect("cpu matmul");
        cpu::add_bias(&mut want, &c.b).expect("cpu bias");
        let mag: Vec<f64> = (0..rows * n)
            .map(|e| {
                let (i, j) = (e / n, e % n);
                (0..k).map(|q| (c.h[i * k + q] as f64 * c.w[q * n + j] as f64).abs()).sum::<f64>()
                    + (c.b[j] as f64).abs()
            })
            .collect();
        assert_close(&format!("{name} logits vs cpu"), &logits, &want, |e| {
            2.0 * (2 * k + 2) as f64 * U * mag[e] + FLUSH
        });
        // The loss is finite and the correct count an integer no larger than the rows.
        let (loss, correct) =
            (f32::from_bits(fused.metrics[0]) - 0.25, f32::from_bits(fused.metrics[1]) - 3.0);
        assert!(loss.is_finite() && loss > 0.0, "{name}: loss sum {loss}");
        assert!(
            correct >= 0.0 && correct <= rows as f32 && correct.fract() == 0.0,
            "{name}: correct {correct}"
        );
    }
}

/// Shapes the head does not take are errors that say what to do, never a launch: one class
/// (no softmax), too many classes, too many blocks per invocation (three chunks of 10
/// classes; 32 classes past one chunk), no rows, no inputs.
#[test]
fn softmax_head_refuses_shapes_it_does_not_take() {
    let _serial = serial();
    let f = fixture();
    let big = upload(&f.gpu, &vec![0.0; 1 << 16]);
    let labels = upload_u32(&f.gpu, &vec![0u32; 4096]);
    for (rows, n, k) in [(7, 1, 5), (7, 33, 5), (513, 10, 5), (300, 32, 5), (0, 10, 5), (7, 10, 0)] {
        assert!(!head_fits(rows, n) || rows == 0 || k == 0, "{rows}x{n} should not fit");
        let call = HeadCall {
            rows,
            classes: n,
            k,
            h: (&big, 0),
            params: (&big, 0),
            bias: 0,
            logits: (&big, 0),
            labels: (&labels, 0),
            dlogits: None,
            scale: 1.0,
            metrics: (&big, 0),
        };
        let err =
            f.kernels.head.record(&f.gpu, &call).err().unwrap_or_else(|| panic!("{rows}x{n}x{k} recorded"));
        assert!(err.to_string().contains("softmax_xent apart"), "{rows}x{n}x{k}: {err}");
    }
}
