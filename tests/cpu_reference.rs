//! Tests of the CPU reference backend against independent f64 computations, optimizer steps
//! worked out by hand, and central finite differences.
//!
//! The CPU backend is the oracle of the GPU tests, so it is checked here against nothing but
//! mathematics. Every tolerance says where it comes from; `U = 2^-24` is the unit roundoff of
//! f32 (half an ulp of 1).

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use wgtrain::cpu::{
    activation_backward, activation_forward, adam_step, add_bias, column_sums, matmul, matmul_into, sgd_step,
    softmax, softmax_xent, CpuMlp,
};
use wgtrain::{Activation, Error, Init, Layer, MatmulForm, Network, Optimizer, StepScalars};

/// Unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

fn uniform(rng: &mut Pcg64Mcg, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

// ---------------------------------------------------------------------------------------------
// matmul

/// `C = op(A) op(B)` in f64 straight from the definitions in `MatmulForm`'s docs (not from its
/// strides, so the strides are tested too), with `sum_p |A_ip B_pj|` for the error bound.
fn matmul_f64(form: MatmulForm, m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let at = |i: usize, p: usize| match form {
        MatmulForm::AB | MatmulForm::ABt => a[i * k + p],
        MatmulForm::AtB => a[p * m + i],
    } as f64;
    let bt = |p: usize, j: usize| match form {
        MatmulForm::AB | MatmulForm::AtB => b[p * n + j],
        MatmulForm::ABt => b[j * k + p],
    } as f64;
    let (mut c, mut abs) = (vec![0.0; m * n], vec![0.0; m * n]);
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += at(i, p) * bt(p, j);
                abs[i * n + j] += (at(i, p) * bt(p, j)).abs();
            }
        }
    }
    (c, abs)
}

#[test]
fn matmul_matches_f64_in_every_form_on_awkward_shapes() {
    // Sizes around the kernels' tile widths (63, 65), single rows and columns, and the MNIST
    // model's own shapes (128 x 784 x 64 and its transposes).
    let shapes = [
        (1, 1, 1),
        (1, 7, 3),
        (3, 1, 7),
        (7, 3, 1),
        (63, 65, 7),
        (65, 63, 128),
        (65, 1, 63),
        (1, 10, 784),
        (3, 784, 65),
        (128, 64, 784),
        (784, 64, 128),
        (128, 784, 64),
    ];
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    for form in MatmulForm::ALL {
        for &(m, n, k) in &shapes {
            let a = uniform(&mut rng, m * k, -1.0, 1.0);
            let b = uniform(&mut rng, k * n, -1.0, 1.0);
            let c = matmul(form, m, n, k, &a, &b).unwrap();
            let (want, abs) = matmul_f64(form, m, n, k, &a, &b);
            for (i, ((&c, &w), &s)) in c.iter().zip(&want).zip(&abs).enumerate() {
                // The standard bound of a k-term f32 dot product, gamma_k * sum |a b| with
                // gamma_k ~ k U, doubled for slack; it holds for any summation order and with
                // or without FMA.
                let tol = 2.0 * k as f64 * U * s + 1e-30;
                assert!(
                    (c as f64 - w).abs() <= tol,
                    "{} m={m} n={n} k={k} at {i}: got {c}, want {w}, tol {tol:e}",
                    form.name()
                );
            }
        }
    }
}

/// Large products are cut into row blocks over rayon's threads; each output is still one sum
/// in order of k, so two threads must give one thread's bits, in every form and with a row
/// count that does not split evenly.
#[test]
fn a_product_split_over_threads_gives_the_same_bits() {
    let mut rng = Pcg64Mcg::seed_from_u64(41);
    let (m, n, k) = (521, 384, 512);
    let a = uniform(&mut rng, m * k, -1.0, 1.0);
    let b = uniform(&mut rng, k * n, -1.0, 1.0);
    let pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool");
    let (one, two) = (pool(1), pool(2));
    for form in MatmulForm::ALL {
        let single = one.install(|| matmul(form, m, n, k, &a, &b)).expect("one thread");
        let split = two.install(|| matmul(form, m, n, k, &a, &b)).expect("two threads");
        let diff = single.iter().zip(&split).position(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(diff, None, "{}: the split product differs from the single-thread one", form.name());
        // And it is the product: spot-check entries of both blocks against f64, within the
        // dot-product bound (2k+1) u sum|a b| used for every matmul here.
        let [ars, acs, brs, bcs] = form.strides(m, n, k);
        for &(i, j) in &[(0, 0), (m - 1, n - 1), (260, 191), (261, 5)] {
            let terms: Vec<f64> =
                (0..k).map(|p| a[i * ars + p * acs] as f64 * b[p * brs + j * bcs] as f64).collect();
            let exact: f64 = terms.iter().sum();
            let tol = (2 * k + 1) as f64 * f64::powi(2.0, -24) * terms.iter().map(|t| t.abs()).sum::<f64>();
            let got = split[i * n + j] as f64;
            assert!((got - exact).abs() <= tol, "{} C[{i},{j}] = {got}, exact {exact}", form.name());
        }
    }
}

#[test]
fn matmul_into_overwrites_without_reading_the_output() {
    // beta = 0: C's old contents, even NaN, must not leak into the product.
    let (a, b) = ([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]);
    let mut c = [f32::NAN; 4];
    matmul_into(MatmulForm::AB, 2, 2, 2, &a, &b, &mut c).unwrap();
    assert_eq!(c, a, "A times the identity is A");
}

#[test]
fn matmul_rejects_zero_sizes_and_wrong_lengths() {
    let v = [0.0f32; 12];
    let cases: [(&str, usize, usize, usize, usize, usize); 5] = [
        ("m = 0", 0, 3, 4, 0, 12),
        ("n = 0", 3, 0, 4, 12, 0),
        ("k = 0", 3, 4, 0, 0, 0),
        ("A one short", 3, 4, 4, 11, 16),
        ("B one long", 3, 4, 4, 12, 17),
    ];
    for (why, m, n, k, alen, blen) in cases {
        let (a, b) = (vec![0.0f32; alen], vec![0.0f32; blen]);
        for form in MatmulForm::ALL {
            let r = matmul(form, m, n, k, &a, &b);
            assert!(matches!(r, Err(Error::Shape(_))), "{why} ({}): {r:?}", form.name());
        }
    }
    let mut c = vec![0.0f32; 5];
    let r = matmul_into(MatmulForm::AB, 2, 3, 2, &v[..4], &v[..6], &mut c);
    assert!(matches!(r, Err(Error::Shape(_))), "C of 5 for [2, 3]: {r:?}");
}

// ---------------------------------------------------------------------------------------------
// activations

const GELU_K: f64 = 0.044715;

fn act_f64(x: f64, act: Activation) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => 0.5 * x * (1.0 + (c * (x + GELU_K * x * x * x)).tanh()),
    }
}

fn act_derivative_f64(x: f64, act: Activation) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => f64::from(x > 0.0),
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 - s)
        }
        Activation::Tanh => 1.0 - x.tanh().powi(2),
        Activation::Gelu => {
            let t = (c * (x + GELU_K * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * GELU_K * x * x)
        }
    }
}

/// x from -12 to 12 in steps of 1/64 (exact in f32), plus values at the edges of the ranges
/// where exp and tanh saturate.
fn activation_grid() -> Vec<f32> {
    let mut xs: Vec<f32> = (-768..=768).map(|i| i as f32 / 64.0).collect();
    xs.extend([1e-7, -1e-7, 30.0, -30.0, 90.0, -90.0, 1e4, -1e4]);
    xs
}

#[test]
fn activation_forward_matches_f64() {
    let xs = activation_grid();
    for act in Activation::ALL {
        let y = activation_forward(&xs, act);
        assert_eq!(y.len(), xs.len());
        for (&x, &y) in xs.iter().zip(&y) {
            let want = act_f64(x as f64, act);
            // Each formula is a handful of f32 operations (exp and tanh within 1-2 ulp) on
            // values no larger than 1 + |x|; 8 roundings of that size is a generous budget.
            // It also covers GELU's f32 constant sqrt(2/pi), off by 2^-25 relative.
            let tol = 8.0 * U * (1.0 + (x as f64).abs());
            assert!((y as f64 - want).abs() <= tol, "{act:?}({x}) = {y}, want {want}");
        }
    }
}

#[test]
fn activation_backward_matches_f64_derivative() {
    let xs = activation_grid();
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    let dy = uniform(&mut rng, xs.len(), -2.0, 2.0);
    for act in Activation::ALL {
        let dz = activation_backward(&dy, &xs, act).unwrap();
        for ((&x, &dy), &dz) in xs.iter().zip(&dy).zip(&dz) {
            let (x64, dy64) = (x as f64, dy as f64);
            let want = dy64 * act_derivative_f64(x64, act);
            // GELU's second term multiplies 1 - t^2, whose f32 rounding error is ~2U
            // absolute, by 0.5 |x| c (1 + 3k x^2); budget 16U on that factor plus 1 for the
            // other terms (sigmoid and tanh need only the 1).
            let factor = 1.0 + 0.5 * x64.abs() * (1.0 + 3.0 * GELU_K * x64 * x64);
            let tol = 16.0 * U * dy64.abs() * factor;
            assert!((dz as f64 - want).abs() <= tol, "{act:?}'({x}) * {dy} = {dz}, want {want}, tol {tol:e}");
        }
    }
}

#[test]
fn activation_backward_matches_finite_differences_of_forward() {
    // Central differences of the library's own f32 forward, evaluated at x +- h with x on a
    // grid of 1/64 and h = 2^-7, so that x +- h are exact in f32. The error of
    // (f(x+h) - f(x-h)) / 2h is the truncation h^2/6 |f'''| (|f'''| <= 2 for these
    // activations: 2 is tanh's at 0) plus the f32 rounding of the two forward values,
    // at most 8U(1 + |x| + h) each (the forward test's bound) divided by 2h.
    let h = 1.0 / 128.0;
    let xs: Vec<f32> = (-512..=512).map(|i| i as f32 / 64.0).collect();
    let ones = vec![1.0f32; xs.len()];
    for act in Activation::ALL {
        let plus: Vec<f32> = xs.iter().map(|&x| x + h).collect();
        let minus: Vec<f32> = xs.iter().map(|&x| x - h).collect();
        let (fp, fm) = (activation_forward(&plus, act), activation_forward(&minus, act));
        let dz = activation_backward(&ones, &xs, act).unwrap();
        for i in 0..xs.len() {
            let x = xs[i] as f64;
            if act == Activation::Relu && x.abs() < h as f64 {
                continue; // the kink: a difference across it is no derivative
            }
            let fd = (fp[i] as f64 - fm[i] as f64) / (2.0 * h as f64);
            let tol = (h as f64).powi(2) / 3.0 + 8.0 * U * (1.0 + x.abs() + h as f64) / h as f64;
            assert!(
                (dz[i] as f64 - fd).abs() <= tol,
                "{act:?}'({x}): backward {}, finite difference {fd}, tol {tol:e}",
                dz[i]
            );
        }
    }
}

#[test]
fn activation_backward_rejects_mismatched_lengths() {
    let r = activation_backward(&[1.0, 2.0], &[1.0, 2.0, 3.0], Activation::Relu);
    assert!(matches!(r, Err(Error::Shape(_))), "dy of 2 for z of 3: {r:?}");
}

// ---------------------------------------------------------------------------------------------
// bias and column sums

#[test]
fn add_bias_and_column_sums_match_f64() {
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    for (rows, cols) in [(1, 1), (1, 10), (7, 1), (65, 63), (128, 64)] {
        let x = uniform(&mut rng, rows * cols, -1.0, 1.0);
        let bias = uniform(&mut rng, cols, -1.0, 1.0);
        let mut z = x.clone();
        add_bias(&mut z, &bias).unwrap();
        for (i, (&z, &x)) in z.iter().zip(&x).enumerate() {
            // One f32 addition: exactly the rounded sum.
            assert_eq!(z, x + bias[i % cols], "add_bias [{rows}, {cols}] at {i}");
        }
        let s = column_sums(&x, rows, cols).unwrap();
        for j in 0..cols {
            let col = (0..rows).map(|r| x[r * cols + j] as f64);
            let (want, abs): (f64, f64) = col.fold((0.0, 0.0), |(s, a), v| (s + v, a + v.abs()));
            // Recursive summation of `rows` terms: error <= (rows - 1) U sum |x|.
            let tol = rows as f64 * U * abs;
            assert!(
                (s[j] as f64 - want).abs() <= tol,
                "column_sums [{rows}, {cols}] column {j}: {} vs {want}",
                s[j]
            );
        }
    }
}

#[test]
fn add_bias_and_column_sums_reject_bad_shapes() {
    let cases: [(&str, usize, usize); 3] =
        [("7 values for 2 columns", 7, 2), ("no values", 0, 2), ("no bias", 4, 0)];
    for (why, zlen, blen) in cases {
        let r = add_bias(&mut vec![0.0; zlen], &vec![0.0; blen]);
        assert!(matches!(r, Err(Error::Shape(_))), "add_bias, {why}: {r:?}");
    }
    for (why, len, rows, cols) in [("one short", 5, 2, 3), ("zero rows", 0, 0, 3), ("zero cols", 0, 3, 0)] {
        let r = column_sums(&vec![0.0; len], rows, cols);
        assert!(matches!(r, Err(Error::Shape(_))), "column_sums, {why}: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// softmax cross-entropy

#[test]
fn softmax_xent_matches_f64_log_sum_exp() {
    let mut rng = Pcg64Mcg::seed_from_u64(4);
    for (rows, classes, spread) in [(1, 1, 1.0), (5, 2, 1.0), (5, 3, 10.0), (6, 7, 30.0), (9, 10, 3.0)] {
        let logits = uniform(&mut rng, rows * classes, -spread, spread);
        let labels: Vec<u32> = (0..rows).map(|_| rng.random_range(0..classes) as u32).collect();
        let scale = 1.0 / rows as f32;
        let out = softmax_xent(&logits, &labels, classes, scale).unwrap();
        let (mut loss, mut correct) = (0.0f64, 0u32);
        for (r, z) in logits.chunks(classes).enumerate() {
            let z: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
            let y = labels[r] as usize;
            loss += m + sum.ln() - z[y];
            correct += u32::from(z.iter().position(|&v| v == m) == Some(y));
            for (j, &zj) in z.iter().enumerate() {
                let want = ((zj - m).exp() / sum - f64::from(j == y)) * scale as f64;
                // exp(z - m) has relative error ~|z - m| U (the rounding of z - m, amplified
                // by exp) plus 1 ulp; the sum adds `classes` roundings, the division one.
                let tol = (classes as f64 + 4.0 + 2.0 * spread as f64) * U * scale as f64;
                let got = out.dlogits[r * classes + j] as f64;
                assert!((got - want).abs() <= tol, "dlogits[{r}, {j}] {got} vs {want}");
            }
        }
        // Per row: the errors above in ln(sum) plus ulps of lse and z[y], both <= ~|m| + ln
        // (classes); then `rows` f32 additions of values up to ~2 spread.
        let tol = rows as f64 * (classes as f64 + 8.0) * 2.0 * spread as f64 * U;
        assert!(
            (out.loss_sum as f64 - loss).abs() <= tol,
            "[{rows}, {classes}] loss_sum {} vs {loss}",
            out.loss_sum
        );
        assert_eq!(out.correct, correct, "[{rows}, {classes}] correct");
    }
}

#[test]
fn softmax_xent_stays_finite_for_huge_logits() {
    let logits = [1e4, -1e4, 0.0, -1e4, 1e4, 1e4, -1e4, -1e4, -1e4];
    let labels = [0, 2, 1];
    let out = softmax_xent(&logits, &labels, 3, 1.0).unwrap();
    assert!(out.loss_sum.is_finite(), "loss {}", out.loss_sum);
    assert!(out.dlogits.iter().all(|d| d.is_finite()), "{:?}", out.dlogits);
    // Row 0: label at the maximum, the others e^-1e4 behind: loss 0. Row 1: two tied maxima,
    // label on one: ln 2. Row 2: three equal logits: ln 3. lse is computed next to 1e4, whose
    // f32 ulp is ~1e-3, so the sum is known to ~2e-3.
    let want = 0.0 + 2f64.ln() + 3f64.ln();
    assert!((out.loss_sum as f64 - want).abs() < 2e-3, "loss {} vs {want}", out.loss_sum);
    // dlogits = softmax - onehot: rows sum to zero.
    for (r, d) in out.dlogits.chunks(3).enumerate() {
        assert!(d.iter().sum::<f32>().abs() < 1e-6, "row {r} of dlogits sums to {d:?}");
    }
    // Row 0 is right; row 1's first maximum is class 1, not its label 2; row 2's is 0, not 1.
    assert_eq!(out.correct, 1);
}

#[test]
fn softmax_xent_counts_ties_for_the_first_maximum() {
    // Each row: logits, label, whether it counts as correct, and why.
    let table: [([f32; 3], u32, u32, &str); 5] = [
        ([1.0, 1.0, 0.0], 0, 1, "tie between 0 and 1: the first, 0, is the prediction"),
        ([1.0, 1.0, 0.0], 1, 0, "tie between 0 and 1: 1 is not the first"),
        ([0.0, 2.0, 2.0], 1, 1, "tie between 1 and 2: 1 is first"),
        ([0.0, 2.0, 2.0], 2, 0, "tie between 1 and 2: 2 is not first"),
        ([5.0, 5.0, 5.0], 0, 1, "all tied: 0 is first"),
    ];
    for (logits, label, want, why) in table {
        let out = softmax_xent(&logits, &[label], 3, 1.0).unwrap();
        assert_eq!(out.correct, want, "{why}");
    }
}

#[test]
fn softmax_xent_rejects_bad_labels_and_shapes() {
    let r = softmax_xent(&[0.0; 6], &[0, 3], 3, 1.0);
    assert!(matches!(r, Err(Error::Data(_))), "label 3 of 3 classes: {r:?}");
    let r = softmax_xent(&[0.0; 5], &[0, 1], 3, 1.0);
    assert!(matches!(r, Err(Error::Shape(_))), "5 logits for 2 rows of 3: {r:?}");
    let r = softmax_xent(&[], &[], 3, 1.0);
    assert!(matches!(r, Err(Error::Shape(_))), "no rows: {r:?}");
    let r = softmax_xent(&[], &[0], 0, 1.0);
    assert!(matches!(r, Err(Error::Shape(_))), "no classes: {r:?}");
}

#[test]
fn softmax_is_the_gradient_plus_onehot() {
    let logits = [0.5, -1.0, 2.0, 3.0, 3.0, -2.0];
    let p = softmax(&logits, 3).unwrap();
    let out = softmax_xent(&logits, &[2, 0], 3, 1.0).unwrap();
    for (i, (&p, &d)) in p.iter().zip(&out.dlogits).enumerate() {
        let onehot = f32::from(i == 2 || i == 3);
        // Same f32 operations on the same values: identical up to the one subtraction.
        assert!((p - (d + onehot)).abs() <= 2.0 * f32::EPSILON, "{i}: {p} vs {d} + {onehot}");
    }
}

// ---------------------------------------------------------------------------------------------
// optimizers, against steps worked out by hand

/// Runs `steps` of an optimizer on `len` copies of one parameter starting at 1.0, with the gradients `grads` in turn; returns the first
/// element's `(p, m, v)` after each step, having checked that every element agrees.
fn run_optimizer(opt: Optimizer, grads: &[f32], len: usize) -> Vec<(f64, f64, f64)> {
    let (mut p, mut m, mut v) = (vec![1.0f32; len], vec![0.0f32; len], vec![0.0f32; len]);
    let mut out = Vec::new();
    for (t, &g) in grads.iter().enumerate() {
        let s = opt.step_scalars(t as u64 + 1);
        let g = vec![g; len];
        match opt {
            Optimizer::Adam { .. } => adam_step(&mut p, &g, &mut m, &mut v, &s).unwrap(),
            Optimizer::Sgd { .. } => sgd_step(&mut p, &g, &mut m, &s).unwrap(),
        }
        assert!(p.iter().all(|&x| x == p[0]), "step {t}: elements disagree");
        assert!(m.iter().all(|&x| x == m[0]) && v.iter().all(|&x| x == v[0]));
        out.push((p[0] as f64, m[0] as f64, v[0] as f64));
    }
    out
}

/// Buffers this long take the optimizers' parallel path (2^20 elements and up), with a partial
/// last chunk.
const PARALLEL_LEN: usize = (1 << 20) + 3;

// Tolerance of the hand-worked optimizer tests: each step is ~10 f32 operations on values
// <= 1 (relative error <= 10 U ~ 6e-7 of a step of ~0.1) plus the rounding of p itself
// (U ~ 6e-8); three steps stay under 3e-7. 1e-6 leaves room and is still 10^4 times smaller
// than the effect of any wrong term (a missing bias correction changes step 1 by 0.9).
const OPT_TOL: f64 = 1e-6;

#[test]
fn adam_matches_three_steps_worked_by_hand() {
    // lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8, p0 = 1, gradients 0.5, 1.0, -0.25.
    // t=1, g=0.5:  m = 0.1*0.5 = 0.05;  v = 0.001*0.25 = 0.00025
    //   mhat = 0.05/(1-0.9) = 0.5;  vhat = 0.00025/(1-0.999) = 0.25;  sqrt = 0.5
    //   p = 1 - 0.1*0.5/(0.5+1e-8) = 0.900000002
    // t=2, g=1.0:  m = 0.9*0.05 + 0.1*1 = 0.145;  v = 0.999*0.00025 + 0.001*1 = 0.00124975
    //   mhat = 0.145/(1-0.81) = 0.763157895;  vhat = 0.00124975/(1-0.998001) = 0.625187594
    //   p = 0.900000002 - 0.1*0.763157895/0.790688051 = 0.900000002 - 0.096518201 = 0.803481801
    // t=3, g=-0.25: m = 0.9*0.145 - 0.025 = 0.1055;  v = 0.999*0.00124975 + 0.001*0.0625
    //   = 0.00131100025;  mhat = 0.1055/(1-0.729) = 0.389298893
    //   vhat = 0.00131100025/(1-0.997002999) = 0.437437375;  sqrt = 0.661390486
    //   p = 0.803481801 - 0.1*0.389298893/0.661390486 = 0.803481801 - 0.058860672 = 0.744621128
    let opt = Optimizer::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };
    let want: [(f64, f64, f64); 3] = [
        (0.900_000_002, 0.05, 0.000_25),
        (0.803_481_801, 0.145, 0.001_249_75),
        (0.744_621_128, 0.1055, 0.001_311_000_25),
    ];
    let got = run_optimizer(opt, &[0.5, 1.0, -0.25], PARALLEL_LEN);
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g.0 - w.0).abs() <= OPT_TOL, "step {}: p {} vs {}", t + 1, g.0, w.0);
        assert!((g.1 - w.1).abs() <= OPT_TOL, "step {}: m {} vs {}", t + 1, g.1, w.1);
        // v is worked with b2 = 0.999 exactly, but 0.999 in f32 is 0.99900001287, so the
        // code's 1 - b2 is 0.00099998713: 1.3e-5 below 0.001, relative. (vhat and p barely
        // notice, since inv_bias2 is computed from the same f32 b2 and cancels it.)
        let tol = 2e-5 * w.2;
        assert!((g.2 - w.2).abs() <= tol, "step {}: v {} vs {}", t + 1, g.2, w.2);
    }
}

#[test]
fn adamw_decays_before_the_adam_step() {
    // As above with weight_decay = 0.1: first p -= lr*wd*p = p*(1 - 0.01), then the same Adam
    // updates (they do not depend on p): 0.099999998, 0.096518201, 0.058860672.
    // t=1: 1*0.99 = 0.99 - 0.099999998 = 0.890000002
    // t=2: 0.890000002*0.99 = 0.881100002 - 0.096518201 = 0.784581801
    // t=3: 0.784581801*0.99 = 0.776735983 - 0.058860672 = 0.717875310
    let opt = Optimizer::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
    let want: [f64; 3] = [0.890_000_002, 0.784_581_801, 0.717_875_310];
    let got = run_optimizer(opt, &[0.5, 1.0, -0.25], 7);
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g.0 - w).abs() <= OPT_TOL, "step {}: p {} vs {w}", t + 1, g.0);
    }
}

#[test]
fn sgd_momentum_matches_three_steps_worked_by_hand() {
    // PyTorch's momentum: u = mu*u + g, p -= lr*u; lr = 0.1, mu = 0.9, p0 = 1.
    // t=1, g=0.5:   u = 0.5;                  p = 1 - 0.05 = 0.95
    // t=2, g=1.0:   u = 0.45 + 1 = 1.45;      p = 0.95 - 0.145 = 0.805
    // t=3, g=-0.25: u = 1.305 - 0.25 = 1.055; p = 0.805 - 0.1055 = 0.6995
    let want: [(f64, f64); 3] = [(0.95, 0.5), (0.805, 1.45), (0.6995, 1.055)];
    for len in [1, PARALLEL_LEN] {
        let got = run_optimizer(Optimizer::sgd(0.1, 0.9), &[0.5, 1.0, -0.25], len);
        for (t, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g.0 - w.0).abs() <= OPT_TOL, "len {len} step {}: p {} vs {}", t + 1, g.0, w.0);
            assert!((g.1 - w.1).abs() <= OPT_TOL, "len {len} step {}: u {} vs {}", t + 1, g.1, w.1);
        }
    }
}

#[test]
fn optimizers_keep_zero_padding_at_zero_and_reject_mismatched_buffers() {
    // A padding slot has p = g = m = v = 0: Adam's step is 0 / (0 + eps) = 0.
    let s =
        Optimizer::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.1 }.step_scalars(1);
    let (mut p, mut m, mut v) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
    adam_step(&mut p, &[0.0; 3], &mut m, &mut v, &s).unwrap();
    assert_eq!((p, m, v), ([0.0; 3], [0.0; 3], [0.0; 3]));
    let r = adam_step(&mut p, &[0.0; 2], &mut m, &mut v, &s);
    assert!(matches!(r, Err(Error::Shape(_))), "2 gradients for 3 parameters: {r:?}");
    let r = sgd_step(&mut p, &[0.0; 3], &mut [0.0; 4], &StepScalars::default());
    assert!(matches!(r, Err(Error::Shape(_))), "4 momenta for 3 parameters: {r:?}");
}

// ---------------------------------------------------------------------------------------------
// CpuMlp

/// A 7-5-3 model with `hidden` after the first layer, biases made non-zero so their gradients
/// are exercised, and 8 rows of data; `seed` picks the data.
fn small_model(hidden: Activation, seed: u64) -> (CpuMlp, Vec<f32>, Vec<u32>) {
    let spec = Network::classifier(&[7, 5, 3], hidden);
    let layout = spec.layout();
    let mut params = layout.init(Init::Glorot, seed);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    for l in &layout.layers {
        for b in &mut params[l.bias..l.bias + l.outputs] {
            *b = rng.random_range(-0.5..0.5);
        }
    }
    let x = uniform(&mut rng, 8 * 7, -1.0, 1.0);
    let labels = (0..8).map(|_| rng.random_range(0..3u32)).collect();
    (CpuMlp::new(spec, params, Optimizer::adam(1e-3)).unwrap(), x, labels)
}

/// The smallest |z| of the hidden layer's pre-activations over the batch.
fn min_abs_hidden_preactivation(model: &CpuMlp, x: &[f32]) -> f32 {
    let l = model.layout().layers[0];
    let w = &model.params()[l.weight..l.weight + l.inputs * l.outputs];
    let mut z = matmul(MatmulForm::AB, x.len() / l.inputs, l.outputs, l.inputs, x, w).unwrap();
    add_bias(&mut z, &model.params()[l.bias..l.bias + l.outputs]).unwrap();
    z.iter().fold(f32::INFINITY, |m, z| m.min(z.abs()))
}

#[test]
fn gradients_match_finite_differences_of_the_mean_loss() {
    // Central differences of the mean loss, computed by `evaluate` in f32, with step h = 1e-2
    // on one parameter at a time. Error budget of (L(p+h) - L(p-h)) / 2h:
    // - rounding: the f32 mean loss (a 7- and a 5-term dot product, exp, ln, a sum over 8
    //   rows, all of magnitude <= ~3) is off by at most ~50 U * 3 ~ 1e-5, and the difference
    //   of two such values is divided by 2h = 0.02: <= 1e-3 in the worst case, ~1e-5 typical;
    // - truncation: h^2/6 |L'''| with |L'''| of order 1 here: ~2e-5.
    // The worst case assumes every rounding error adds up; they are independent and mostly
    // cancel, and the largest error seen across the five activations is 1.6e-5 (the data are
    // seeded, so this test is deterministic). The bound 1e-4 + 1e-2 |g| is six times that, and
    // far below the error of a wrong rule (a missing transpose or derivative changes gradients
    // by tens of percent, a wrong scale by a factor).
    let h = 1e-2f32;
    for hidden in Activation::ALL {
        // ReLU's kink: a difference across it is no derivative, so use the first data seed
        // whose hidden pre-activations are all further than 2h from 0 (perturbing W1 moves
        // them by h |x| <= h, perturbing b1 by h).
        let seed = (0..200)
            .find(|&s| {
                let (model, x, _) = small_model(hidden, s);
                min_abs_hidden_preactivation(&model, &x) > 2.0 * h
            })
            .expect("no data seed keeps the pre-activations away from 0");
        let (mut model, x, labels) = small_model(hidden, seed);
        let rows = labels.len();
        model.compute_gradients(&x, &labels, rows).unwrap();
        let grads = model.grads().to_vec();
        let params = model.params().to_vec();
        let layout = model.layout().clone();
        let mut real = vec![false; layout.len];
        for l in &layout.layers {
            real[l.weight..l.weight + l.inputs * l.outputs].fill(true);
            real[l.bias..l.bias + l.outputs].fill(true);
        }
        let mut worst = 0.0f64;
        for i in 0..layout.len {
            if !real[i] {
                assert_eq!(grads[i], 0.0, "{hidden:?}: padding slot {i} has a gradient");
                continue;
            }
            let mut p = params.clone();
            let mean_loss = |model: &mut CpuMlp, p: &[f32]| {
                model.set_params(p).unwrap();
                model.evaluate(&x, &labels).unwrap().0 as f64 / rows as f64
            };
            p[i] = params[i] + h;
            let (up, plus) = (p[i] as f64, mean_loss(&mut model, &p));
            p[i] = params[i] - h;
            let (down, minus) = (p[i] as f64, mean_loss(&mut model, &p));
            // Divide by the step actually taken after f32 rounding of p +- h.
            let fd = (plus - minus) / (up - down);
            let g = grads[i] as f64;
            let err = (g - fd).abs();
            worst = worst.max(err);
            assert!(
                err <= 1e-4 + 1e-2 * g.abs(),
                "{hidden:?} (seed {seed}): parameter {i}: gradient {g:e}, finite difference {fd:e}"
            );
        }
        println!("{hidden:?}: seed {seed}, worst |g - fd| = {worst:e}");
    }
}

#[test]
fn data_parallel_halves_sum_to_the_full_batch_gradient() {
    let (mut model, x, labels) = small_model(Activation::Tanh, 5);
    let full = {
        model.compute_gradients(&x, &labels, 8).unwrap();
        model.grads().to_vec()
    };
    // Scaling by 1/16 instead of 1/8 halves dlogits exactly (a power of two), and every later
    // operation is linear in it, so the gradients halve bit for bit.
    model.compute_gradients(&x, &labels, 16).unwrap();
    for (i, (&g, &f)) in model.grads().iter().zip(&full).enumerate() {
        assert_eq!(g, f / 2.0, "parameter {i} at scale_rows 16");
    }
    // Two replicas of 4 rows each, scaled by the global batch of 8, sum to the full gradient;
    // only the order of the f32 sums over rows differs: ~8 U relative to the terms' sizes.
    model.compute_gradients(&x[..28], &labels[..4], 8).unwrap();
    let first = model.grads().to_vec();
    model.compute_gradients(&x[28..], &labels[4..], 8).unwrap();
    for (i, ((&a, &b), &f)) in first.iter().zip(model.grads()).zip(&full).enumerate() {
        let tol = 1e-6 * (1.0 + f.abs());
        assert!((a + b - f).abs() <= tol, "parameter {i}: {a} + {b} vs {f}");
    }
}

#[test]
fn loss_falls_for_ten_steps_on_a_separable_problem() {
    // Two Gaussian blobs per class, well apart, in 2-D; a 2-8-2 ReLU model, full batch.
    let mut rng = Pcg64Mcg::seed_from_u64(6);
    let centres = [(-2.0f32, -2.0f32, 0u32), (2.0, 2.0, 0), (-2.0, 2.0, 1), (2.0, -2.0, 1)];
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for i in 0..64 {
        let (cx, cy, y) = centres[i % 4];
        x.extend([cx + rng.random_range(-0.5..0.5), cy + rng.random_range(-0.5..0.5)]);
        labels.push(y);
    }
    for opt in [Optimizer::adam(0.05), Optimizer::sgd(0.1, 0.9)] {
        let spec = Network::classifier(&[2, 8, 2], Activation::Relu);
        let params = spec.layout().init(Init::He, 3);
        let mut model = CpuMlp::new(spec, params, opt).unwrap();
        let mut losses = Vec::new();
        for _ in 0..10 {
            let (loss, _) = model.train_step(&x, &labels).unwrap();
            losses.push(loss / 64.0);
        }
        let (after, _) = model.evaluate(&x, &labels).unwrap();
        losses.push(after / 64.0);
        // Full-batch steps of a small learning rate on a smooth loss descend at every step.
        for w in losses.windows(2) {
            assert!(w[1] < w[0], "{opt:?}: loss rose, {losses:?}");
        }
        // Seen: 0.75 -> 0.004 (Adam) and 0.75 -> 0.013 (SGD); a tenth is a loose floor.
        assert!(losses[10] < 0.1 * losses[0], "{opt:?}: loss fell too little, {losses:?}");
        let (_, correct) = model.evaluate(&x, &labels).unwrap();
        assert_eq!(correct, 64, "{opt:?}: the blobs are separable");
        assert_eq!(model.optimizer_state().2, 10, "{opt:?}: ten steps counted");
        println!("{opt:?}: {losses:?}");
    }
}

#[test]
fn resuming_from_saved_state_continues_bit_for_bit() {
    let (mut model, x, labels) = small_model(Activation::Gelu, 7);
    for _ in 0..3 {
        model.train_step(&x, &labels).unwrap();
    }
    let (m, v, step) = model.optimizer_state();
    let (m, v) = (m.to_vec(), v.to_vec());
    let mut resumed = CpuMlp::new(model.spec().clone(), model.params().to_vec(), *model.optimizer()).unwrap();
    resumed.set_optimizer_state(&m, &v, step).unwrap();
    for _ in 0..3 {
        let a = model.train_step(&x, &labels).unwrap();
        let b = resumed.train_step(&x, &labels).unwrap();
        assert_eq!(a, b, "loss and correct after resuming");
    }
    assert_eq!(model.params(), resumed.params(), "parameters after resuming");
}

#[test]
fn evaluate_in_chunks_and_predict_agree_with_one_pass() {
    // 2500 rows: evaluate and predict run chunks of 1000, 1000 and 500.
    let spec = Network::classifier(&[20, 16, 4], Activation::Sigmoid);
    let params = spec.layout().init(Init::Glorot, 8);
    let mut model = CpuMlp::new(spec, params, Optimizer::adam(1e-3)).unwrap();
    let mut rng = Pcg64Mcg::seed_from_u64(8);
    let x = uniform(&mut rng, 2500 * 20, -3.0, 3.0);
    let labels: Vec<u32> = (0..2500).map(|_| rng.random_range(0..4u32)).collect();
    let (loss, correct) = model.evaluate(&x, &labels).unwrap();
    let (one_pass, one_correct) = model.compute_gradients(&x, &labels, 2500).unwrap();
    // Same row losses added in another grouping: 2500 f32 additions of values ~1.5, so the
    // sums may differ by up to ~2500 U * 2500 * 1.5 ~ 0.6 in the worst case, ~1e-3 typically.
    assert!((loss - one_pass).abs() <= 1e-2, "evaluate {loss} vs one pass {one_pass}");
    assert_eq!(correct, one_correct);
    let probs = model.predict(&x).unwrap();
    assert_eq!(probs.len(), 2500 * 4);
    let mut predicted_right = 0;
    for (r, p) in probs.chunks(4).enumerate() {
        assert!((p.iter().sum::<f32>() - 1.0).abs() <= 4.0 * f32::EPSILON, "row {r}: {p:?}");
        let argmax = (0..4).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        predicted_right += u32::from(argmax == labels[r] as usize);
    }
    assert_eq!(predicted_right, correct, "predict's argmax vs evaluate's count");
}

/// The variant of an error, for tables of expected failures.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::Shape(_) => "shape",
        Error::Config(_) => "config",
        Error::Data(_) => "data",
        _ => "other",
    }
}

#[test]
fn construction_rejects_bad_specs_parameters_and_optimizers() {
    let ok = Network::classifier(&[4, 3, 2], Activation::Relu);
    let n = ok.layout().len;
    let mut relu_logits = ok.clone();
    relu_logits.layers[1] = Layer::dense(2, Activation::Relu);
    let zero_hidden = Network::classifier(&[4, 0, 2], Activation::Relu);
    let inputs_only = Network::classifier(&[4], Activation::Relu);
    let adam = Optimizer::adam(1e-3);
    // Each row: why it must fail, spec, parameter count, optimizer, expected error.
    let table = [
        ("zero-sized hidden layer", zero_hidden, n, adam, "shape"),
        ("inputs only", inputs_only, 0, adam, "shape"),
        ("one parameter short", ok.clone(), n - 1, adam, "shape"),
        ("last activation not identity", relu_logits, n, adam, "config"),
        ("Adam with learning rate 0", ok.clone(), n, Optimizer::adam(0.0), "config"),
        ("SGD with learning rate 0", ok.clone(), n, Optimizer::sgd(0.0, 0.9), "config"),
        ("NaN learning rate", ok.clone(), n, Optimizer::adam(f32::NAN), "config"),
    ];
    for (why, spec, len, opt, expected) in table {
        match CpuMlp::new(spec, vec![0.0; len], opt) {
            Err(e) => assert_eq!(kind(&e), expected, "{why}: {e}"),
            Ok(_) => panic!("{why}: accepted"),
        }
    }
}

/// The training entry points, for tables of calls.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `compute_gradients` with this `scale_rows`.
    Gradients(usize),
    TrainStep,
    Evaluate,
}

#[test]
fn training_calls_reject_bad_shapes_and_leave_the_model_unchanged() {
    let (mut model, x, labels) = small_model(Activation::Relu, 9);
    model.compute_gradients(&x, &labels, 8).unwrap();
    let (params, grads) = (model.params().to_vec(), model.grads().to_vec());
    let mut bad = labels.clone();
    bad[3] = 3;
    let long_x = [x.clone(), vec![0.5]].concat();
    // Each row: why it must fail, values of x (8 rows of 7 are 56), labels, call, error.
    let table = [
        ("x one value short", 55, &labels[..], Call::Gradients(8), "shape"),
        ("no rows", 0, &[][..], Call::Gradients(8), "shape"),
        ("scale_rows 0", 56, &labels[..], Call::Gradients(0), "shape"),
        ("scale_rows below the batch", 56, &labels[..], Call::Gradients(7), "shape"),
        ("label 3 of 3 classes", 56, &bad[..], Call::Gradients(8), "data"),
        ("label 3 of 3 classes", 56, &bad[..], Call::TrainStep, "data"),
        ("x one value long", 57, &labels[..], Call::TrainStep, "shape"),
        ("no rows", 0, &[][..], Call::Evaluate, "shape"),
        ("x one value short", 55, &labels[..], Call::Evaluate, "shape"),
        ("label 3 of 3 classes", 56, &bad[..], Call::Evaluate, "data"),
    ];
    for (why, xlen, y, call, expected) in table {
        let x = &long_x[..xlen];
        let result = match call {
            Call::Gradients(scale) => model.compute_gradients(x, y, scale),
            Call::TrainStep => model.train_step(x, y),
            Call::Evaluate => model.evaluate(x, y),
        };
        match result {
            Err(e) => assert_eq!(kind(&e), expected, "{call:?}, {why}: {e}"),
            Ok(r) => panic!("{call:?}, {why}: accepted, returned {r:?}"),
        }
        assert_eq!(model.params(), &params[..], "{call:?}, {why}: parameters changed");
        assert_eq!(model.grads(), &grads[..], "{call:?}, {why}: gradients changed");
        assert_eq!(model.optimizer_state().2, 0, "{call:?}, {why}: a step was counted");
    }
    for (why, len) in [("no rows", 0), ("a partial row", 13)] {
        let r = model.predict(&long_x[..len]);
        assert!(matches!(r, Err(Error::Shape(_))), "predict, {why}: {r:?}");
    }
    let n = model.layout().len;
    let r = model.set_params(&vec![0.0; n + 1]);
    assert!(matches!(r, Err(Error::Shape(_))), "set_params one long: {r:?}");
    let r = model.set_optimizer_state(&vec![0.0; n], &vec![0.0; n - 1], 3);
    assert!(matches!(r, Err(Error::Shape(_))), "v one short: {r:?}");
    assert_eq!(model.optimizer_state().2, 0, "a rejected state left the step count alone");
}

#[test]
fn optimizers_compute_the_literal_f32_formulas_bit_for_bit() {
    // The GPU kernels are compared with these functions, so they must be exactly the
    // documented f32 formulas, whatever vector width or chunking they run with: the same IEEE
    // operations in the same order round identically, so equality is exact. PARALLEL_LEN
    // elements take the parallel path, 1 000 the serial one.
    let mut rng = Pcg64Mcg::seed_from_u64(10);
    for len in [1_000, PARALLEL_LEN] {
        for wd in [0.0, 0.01] {
            let opt = Optimizer::Adam { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: wd };
            let s = opt.step_scalars(4);
            let p0 = uniform(&mut rng, len, -1.0, 1.0);
            let g = uniform(&mut rng, len, -1.0, 1.0);
            let m0 = uniform(&mut rng, len, -0.1, 0.1);
            let v0 = uniform(&mut rng, len, 0.0, 0.01);
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            adam_step(&mut p, &g, &mut m, &mut v, &s).unwrap();
            for i in 0..len {
                let mut pi = p0[i];
                if wd > 0.0 {
                    pi -= s.lr * s.weight_decay * pi;
                }
                let mi = s.beta1 * m0[i] + (1.0 - s.beta1) * g[i];
                let vi = s.beta2 * v0[i] + (1.0 - s.beta2) * g[i] * g[i];
                pi -= s.lr * (mi * s.inv_bias1) / ((vi * s.inv_bias2).sqrt() + s.eps);
                assert_eq!((p[i], m[i], v[i]), (pi, mi, vi), "Adam len {len} wd {wd} at {i}");
            }
            let s = Optimizer::sgd(0.05, 0.9).step_scalars(4);
            let (mut p, mut u) = (p0.clone(), m0.clone());
            sgd_step(&mut p, &g, &mut u, &s).unwrap();
            for i in 0..len {
                let ui = s.beta1 * m0[i] + g[i];
                assert_eq!((p[i], u[i]), (p0[i] - s.lr * ui, ui), "SGD len {len} at {i}");
            }
        }
    }
}
