//! The fused softmax head with the layer's backward (`softmax_head_train`) against the
//! launches it replaces, bit for bit: the head alone, then dW with db in the weight-gradient
//! product (`record_with_sums`) and dX in the ABt product with the activation-backward
//! epilogue, each product as the tuner picks it and as the naive variant; and dW, db and dX
//! against the CPU reference in f64. On lavapipe at awkward shapes: one row, partial 4x4
//! blocks, two chunks of 256 rows, every activation below, with and without an input gradient.
//!
//! Why bits: the fused kernel performs the same f32 operations in the same order as those
//! launches (`shaders/softmax_head_backward.wgsl`'s header). The CPU bounds: a sum of n
//! products is within `n u sum|terms|` of the exact sum (doubled for fused multiply-adds), then
//! `act'` adds `common::backward_tol`'s.

use super::common::*;
use super::*;
use crate::gpu::kernels::{
    head_backward_fits, submit, HeadBackward, HeadCall, HeadInputGrad, MatmulCall, Variant,
};
use crate::ops::MatmulForm;
use crate::spec::Activation;

/// Floats of padding before each operand, so that offsets are exercised.
const PAD: usize = 3;

/// One case: `rows x n` head over `k` inputs, the layer below's activation (`None`: no dX).
struct Case {
    rows: usize,
    n: usize,
    k: usize,
    below: Option<Activation>,
    h: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    z: Vec<f32>,
    labels: Vec<u32>,
}

impl Case {
    fn new(rows: usize, n: usize, k: usize, below: Option<Activation>, seed: u64) -> Case {
        let picks = random(rows, seed + 3);
        Case {
            rows,
            n,
            k,
            below,
            h: random(rows * k, seed),
            w: random(k * n, seed + 1).iter().map(|v| v * 2.0 / (k as f32).sqrt()).collect(),
            b: random(n, seed + 2),
            // Pre-activations around 0 and past it, where every derivative changes most.
            z: random(rows * k, seed + 4).iter().map(|v| 3.0 * v).collect(),
            labels: picks.iter().map(|p| (((p + 1.0) * 0.5 * n as f32) as usize).min(n - 1) as u32).collect(),
        }
    }

    /// Offsets in the gradients buffer: dW at PAD, db at the next multiple of 4 past it plus
    /// 4 (texture variants store sums as vec4s), sentinels between and after.
    fn grads_layout(&self) -> (usize, usize, usize) {
        let db = (PAD + self.k * self.n).div_ceil(4) * 4 + 4;
        (PAD, db, db + self.n + PAD)
    }
}

/// What a path wrote, as bits: dlogits, the gradients buffer (sentinels included), dX.
struct Out {
    dlogits: Vec<u32>,
    grads: Vec<u32>,
    dx: Vec<u32>,
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Fails naming the first float where `got` and `want` differ in any output.
fn assert_same_bits(what: &str, got: &Out, want: &Out) {
    for (name, g, w) in [
        ("dlogits", &got.dlogits, &want.dlogits),
        ("grads", &got.grads, &want.grads),
        ("dX", &got.dx, &want.dx),
    ] {
        let first = g.iter().zip(w).position(|(a, b)| a != b);
        assert!(g.len() == w.len() && first.is_none(), "{what}: {name} differ first at {first:?}");
    }
}

/// Runs the case fused (`None`) or as the head, then the weight-gradient product with its
/// column sums and the input-gradient product (`Some(variant)`, `Some(None)` the tuner's).
fn run(c: &Case, variant: Option<Option<Variant>>) -> Out {
    let f = fixture();
    let (rows, n, k) = (c.rows, c.n, c.k);
    let hb = upload(&f.gpu, &padded(&c.h, PAD));
    let bias_off = PAD + k * n + 1;
    let params = upload(&f.gpu, &padded(&[c.w.clone(), vec![SENTINEL], c.b.clone()].concat(), PAD));
    let logits = upload(&f.gpu, &padded(&vec![0.0; rows * n], PAD));
    let dlogits = upload(&f.gpu, &padded(&vec![0.0; rows * n], PAD));
    let yb = upload_u32(&f.gpu, &c.labels);
    let metrics = upload(&f.gpu, &[0.0, 0.0]);
    let (dw_off, db_off, glen) = c.grads_layout();
    let grads = upload(&f.gpu, &vec![SENTINEL; glen]);
    let zb = upload(&f.gpu, &padded(&c.z, PAD));
    let dxb = upload(&f.gpu, &padded(&vec![0.0; rows * k], PAD));
    let dx = c.below.map(|activation| HeadInputGrad { dx: (&dxb, PAD), activation, z: (&zb, PAD) });
    let head = |backward| HeadCall {
        rows,
        classes: n,
        k,
        h: (&hb, PAD),
        params: (&params, PAD),
        bias: bias_off,
        logits: (&logits, PAD),
        labels: (&yb, 0),
        dlogits: Some((&dlogits, PAD)),
        scale: 1.0 / rows as f32,
        metrics: (&metrics, 0),
        backward,
    };
    let mut dispatches = Vec::new();
    match variant {
        None => {
            let back = HeadBackward { grads: &grads, dw: dw_off, db: db_off, dx };
            dispatches.push(f.kernels.head.record(&f.gpu, &head(Some(back))).expect("record fused"));
        }
        Some(v) => {
            dispatches.push(f.kernels.head.record(&f.gpu, &head(None)).expect("record head"));
            // dW = h^T dlogits [k, n] with db = column sums of dlogits, as layers/dense.rs records them.
            let dw = MatmulCall {
                a: (&hb, PAD),
                b: (&dlogits, PAD),
                c: (&grads, dw_off),
                ..MatmulCall::plain(MatmulForm::AtB, k, n, rows, &hb, &dlogits, &grads)
            };
            let product = |call: &MatmulCall<'_>, sums| match v {
                Some(v) => f.kernels.matmul.record_with_sums(&f.gpu, v, call, None, sums),
                None => f.kernels.matmul_with_sums(&f.gpu, call, None, sums),
            };
            dispatches.push(product(&dw, Some(db_off)).expect("record dW"));
            if let Some(d) = dx {
                let call = MatmulCall {
                    form: MatmulForm::ABt,
                    m: rows,
                    n: k,
                    k: n,
                    a: (&dlogits, PAD),
                    b: (&params, PAD),
                    c: d.dx,
                    bias: None,
                    act: d.activation,
                    z: Some(d.z),
                    act_backward: true,
                };
                dispatches.push(product(&call, None).expect("record dX"));
            }
        }
    }
    submit(&f.gpu, &dispatches.iter().collect::<Vec<_>>());
    let (dl, pad) = split_padded(&read(&f.gpu, &dlogits, rows * n + 2 * PAD), PAD);
    assert_untouched("around the dlogits", &pad);
    let (d, pad) = split_padded(&read(&f.gpu, &dxb, rows * k + 2 * PAD), PAD);
    assert_untouched("around dX", &pad);
    let g = read(&f.gpu, &grads, glen);
    let outside = [&g[..dw_off], &g[dw_off + k * n..db_off], &g[db_off + n..]].concat();
    assert_untouched("around dW and db", &outside);
    Out { dlogits: bits(&dl), grads: bits(&g), dx: bits(&d) }
}

/// d act / dz in f64, as `cpu/` and `activation_fns.wgsl` define it.
fn act_grad64(act: Activation, z: f64) -> f64 {
    let t = |x: f64| x.clamp(-15.0, 15.0).tanh();
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => (z > 0.0) as u8 as f64,
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        }
        Activation::Tanh => 1.0 - t(z) * t(z),
        Activation::Gelu => {
            let u = t(GELU_C * (z + GELU_A * z * z * z));
            0.5 * (1.0 + u) + 0.5 * z * (1.0 - u * u) * GELU_C * (1.0 + 3.0 * GELU_A * z * z)
        }
    }
}

/// dW, db and dX of the fused launch against f64 sums over its own dlogits.
fn check_against_cpu(name: &str, c: &Case, got: &Out) {
    let (rows, n, k) = (c.rows, c.n, c.k);
    let f32s = |v: &[u32]| v.iter().map(|&b| f32::from_bits(b)).collect::<Vec<f32>>();
    let (dl, grads) = (f32s(&got.dlogits), f32s(&got.grads));
    let (dw_off, db_off, _) = c.grads_layout();
    // dW(q, j) = sum_r h(r, q) dl(r, j); db(j) = sum_r dl(r, j)
    let sum = |terms: &mut dyn Iterator<Item = f64>| terms.fold((0.0, 0.0), |(s, m), t| (s + t, m + t.abs()));
    let (mut want, mut tol) = (Vec::new(), Vec::new());
    for q in 0..k {
        for j in 0..n {
            let (s, m) = sum(&mut (0..rows).map(|r| c.h[r * k + q] as f64 * dl[r * n + j] as f64));
            want.push(s as f32);
            tol.push(2.0 * rows as f64 * U * m + FLUSH);
        }
    }
    assert_close(&format!("{name}: dW vs cpu"), &grads[dw_off..dw_off + k * n], &want, |e| tol[e]);
    let (mut want, mut tol) = (Vec::new(), Vec::new());
    for j in 0..n {
        let (s, m) = sum(&mut (0..rows).map(|r| dl[r * n + j] as f64));
        want.push(s as f32);
        tol.push(2.0 * rows as f64 * U * m + FLUSH);
    }
    assert_close(&format!("{name}: db vs cpu"), &grads[db_off..db_off + n], &want, |e| tol[e]);
    let Some(act) = c.below else { return };
    // dX(r, q) = (sum_j dl(r, j) W(q, j)) act'(z(r, q))
    let (mut want, mut tol) = (Vec::new(), Vec::new());
    for r in 0..rows {
        for q in 0..k {
            let (s, m) = sum(&mut (0..n).map(|j| dl[r * n + j] as f64 * c.w[q * n + j] as f64));
            let z = c.z[r * k + q];
            let g = act_grad64(act, z as f64);
            want.push((s * g) as f32);
            tol.push(2.0 * n as f64 * U * m * g.abs() + backward_tol(act, s as f32, z, (s * g) as f32));
        }
    }
    assert_close(&format!("{name}: dX vs cpu"), &f32s(&got.dx), &want, |e| tol[e]);
}

/// Fused = head + tuned products = head + naive products, bit for bit; and within the CPU
/// bounds. Sentinels around dW and db stay untouched (compared as bits with the rest).
#[test]
fn softmax_head_backward_gives_the_bits_of_the_separate_products() {
    let _serial = serial();
    let shapes = [
        (1, 3, 5, Some(Activation::Relu)),
        (7, 10, 64, Some(Activation::Tanh)),
        (128, 10, 64, Some(Activation::Relu)),
        (129, 17, 13, Some(Activation::Gelu)),
        (300, 10, 5, Some(Activation::Sigmoid)),
        (37, 17, 29, Some(Activation::Identity)),
        (512, 10, 7, None),
        (20, 32, 130, None),
    ];
    for (s, &(rows, n, k, below)) in shapes.iter().enumerate() {
        assert!(head_backward_fits(rows, n, k, below.is_some()), "{rows}x{n}x{k} should run fused");
        let c = Case::new(rows, n, k, below, 700 + 10 * s as u64);
        let name = format!("rows={rows} n={n} k={k} below={below:?}");
        let fused = run(&c, None);
        assert_same_bits(&format!("{name}: fused vs head + tuned products"), &fused, &run(&c, Some(None)));
        let naive = run(&c, Some(Some(Variant::Naive)));
        assert_same_bits(&format!("{name}: fused vs head + naive products"), &fused, &naive);
        check_against_cpu(&name, &c, &fused);
    }
}

/// A backward the head does not take is an error that says what to do, never a launch:
/// evaluation (no dlogits), and too many blocks per invocation (dX of 128 x 300).
#[test]
fn softmax_head_backward_refuses_what_it_does_not_take() {
    let _serial = serial();
    let f = fixture();
    let big = upload(&f.gpu, &vec![0.0; 1 << 16]);
    let labels = upload_u32(&f.gpu, &vec![0u32; 4096]);
    for (rows, n, k, grad) in [(7, 10, 5, false), (128, 10, 300, true)] {
        let dx = HeadInputGrad { dx: (&big, 0), activation: Activation::Relu, z: (&big, 0) };
        let call = HeadCall {
            rows,
            classes: n,
            k,
            h: (&big, 0),
            params: (&big, 0),
            bias: 0,
            logits: (&big, 0),
            labels: (&labels, 0),
            dlogits: grad.then_some((&big, 0)),
            scale: 1.0,
            metrics: (&big, 0),
            backward: Some(HeadBackward { grads: &big, dw: 0, db: 0, dx: Some(dx) }),
        };
        let err =
            f.kernels.head.record(&f.gpu, &call).err().unwrap_or_else(|| panic!("{rows}x{n}x{k} recorded"));
        assert!(err.to_string().contains("backward apart"), "{rows}x{n}x{k}: {err}");
    }
}
