//! The column sums of B folded into a product's launch (`Matmul::record_with_sums`, the bias
//! gradient beside `dW = X^T dZ`), on lavapipe, for every variant that runs each shape: the
//! sums bit for bit equal to `reduce.column_sums` (both forms) and to a sequential f32 sum on
//! the host, the product's bits unchanged by them, and nothing written outside either.
//!
//! Why bits: a sum of f32 values added one at a time in a fixed order is correctly rounded at
//! each step on every backend (Vulkan requires it of `+`), and every one of these adds rows
//! q = 0, 1, ..., k - 1 from 0.0 (see `col_sums_slice` in the shaders).

use super::common::*;
use super::*;
use crate::gpu::kernels::{submit, MatmulCall, Packed, Variant};
use crate::ops::MatmulForm;

/// Floats of sentinels before C, between C and the sums (rounded up to a multiple of 4), and
/// after the sums.
const PAD: usize = 4;

/// `sum_q B(q, j)` in f32, q in order: B is `[k, n]` as stored for AB and AtB, `[n, k]` for ABt.
fn host_sums(form: MatmulForm, n: usize, k: usize, b: &[f32]) -> Vec<f32> {
    (0..n)
        .map(|j| {
            let at = |q: usize| if form == MatmulForm::ABt { b[j * k + q] } else { b[q * n + j] };
            (0..k).fold(0.0f32, |acc, q| acc + at(q))
        })
        .collect()
}

/// Runs `variant` on `call`'s shape with A and B as given: `(C, sums)` read back, or `None`
/// when the variant does not run the shape. `sums = false`: the product alone.
fn run(
    variant: Variant,
    form: MatmulForm,
    (m, n, k): (usize, usize, usize),
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    sums: bool,
) -> Option<(Vec<u32>, Vec<u32>)> {
    let f = fixture();
    let sums_off = (PAD + m * n).next_multiple_of(4) + PAD;
    let total = sums_off + n + PAD;
    let cb = upload(&f.gpu, &vec![SENTINEL; total]);
    let call = MatmulCall { c: (&cb, PAD), ..MatmulCall::plain(form, m, n, k, a, b, &cb) };
    if !f.kernels.matmul.supports(variant, &call) {
        return None;
    }
    let d = f
        .kernels
        .matmul
        .record_with_sums(&f.gpu, variant, &call, Packed::NONE, sums.then_some(sums_off))
        .expect("record");
    submit(&f.gpu, &[&d]);
    let all = read(&f.gpu, &cb, total);
    assert_untouched("before C", &all[..PAD]);
    assert_untouched("between C and the sums", &all[PAD + m * n..sums_off]);
    assert_untouched("after the sums", &all[sums_off + n..]);
    let sums_region = &all[sums_off..sums_off + n];
    if !sums {
        assert_untouched("the sums without col_sums", sums_region);
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    Some((bits(&all[PAD..PAD + m * n]), bits(sums_region)))
}

#[test]
fn column_sums_in_the_product_launch_give_the_bits_of_column_sums() {
    let _serial = serial();
    let f = fixture();
    // MNIST's two weight gradients, odd k (a partial group of eight rows, and k < 8), n not a
    // multiple of 4, m of 1, one AB and two ABt cases.
    let cases = [
        (MatmulForm::AtB, (784, 64, 128)),
        (MatmulForm::AtB, (64, 10, 128)),
        (MatmulForm::AtB, (12, 8, 129)),
        (MatmulForm::AtB, (13, 7, 5)),
        (MatmulForm::AtB, (1, 3, 44)),
        (MatmulForm::AtB, (64, 16, 300)),
        (MatmulForm::AB, (7, 12, 37)),
        (MatmulForm::ABt, (9, 8, 13)),
        // k a multiple of 4: the texture variants too (their own sums over B's rows).
        (MatmulForm::ABt, (9, 8, 12)),
    ];
    for (s, &(form, (m, n, k))) in cases.iter().enumerate() {
        let (a, b) = (random(m * k, 40 + s as u64), random(k * n, 60 + s as u64));
        let (ab, bb) = (upload(&f.gpu, &a), upload(&f.gpu, &b));
        let want = host_sums(form, n, k, &b);
        let want_bits: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
        if form != MatmulForm::ABt {
            // The launch the sums replace, both of its forms.
            for batched in [false, true] {
                let out = zeros(&f.gpu, n);
                let d = f
                    .kernels
                    .reduce
                    .column_sums_as(&f.gpu, batched, k, n, (&bb, 0), (&out, 0))
                    .expect("record");
                submit(&f.gpu, &[&d]);
                let got: Vec<u32> = read(&f.gpu, &out, n).iter().map(|x| x.to_bits()).collect();
                assert_eq!(
                    got,
                    want_bits,
                    "{} {m}x{n}x{k}: column_sums batched={batched} vs host",
                    form.name()
                );
            }
        }
        let mut ran = 0;
        for v in Variant::ALL {
            let Some((c_alone, _)) = run(v, form, (m, n, k), &ab, &bb, false) else { continue };
            let (c, sums) = run(v, form, (m, n, k), &ab, &bb, true).expect("ran without sums");
            let name = format!("{} {} {m}x{n}x{k}", v.name(), form.name());
            assert_eq!(c, c_alone, "{name}: the product changed with the sums");
            assert_eq!(sums, want_bits, "{name}: column sums");
            ran += 1;
        }
        assert!(ran >= 6, "{} {m}x{n}x{k}: only {ran} variants ran", form.name());
    }
}

/// Sums that overlap C, do not fit the buffer, or (texture variants, which store vec4s) are
/// not 4-aligned are errors naming the offset.
#[test]
fn column_sums_offsets_are_checked() {
    let _serial = serial();
    let f = fixture();
    let (m, n, k) = (8, 8, 8);
    let buf = upload(&f.gpu, &random(256, 1));
    let call = MatmulCall::plain(MatmulForm::AtB, m, n, k, &buf, &buf, &buf);
    let mm = &f.kernels.matmul;
    let err = |v: Variant, off: usize| mm.record_with_sums(&f.gpu, v, &call, Packed::NONE, Some(off)).err();
    let overlap = err(Variant::Naive, 60).expect("sums over C's last row");
    assert!(overlap.to_string().contains("overlap C"), "{overlap}");
    let past = err(Variant::Naive, 250).expect("sums past the buffer");
    assert!(past.to_string().contains("column sums"), "{past}");
    assert!(err(Variant::Naive, 65).is_none(), "the scalar variants take any offset");
    if mm.supports(Variant::TexAtb, &call) {
        let misaligned = err(Variant::TexAtb, 65).expect("texture variants need 4-aligned sums");
        assert!(misaligned.to_string().contains("multiple of 4"), "{misaligned}");
        assert!(err(Variant::TexAtb, 68).is_none(), "an aligned offset is fine");
    }
}
