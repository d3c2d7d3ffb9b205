//! Reductions and optimizers against the CPU reference (`crate::cpu`), on lavapipe: column
//! sums, `scale` and `add_scaled` (up to a grid folded into y), and three steps of Adam and of
//! SGD with momentum.
//!
//! Tolerances: see the module header of `gpu/kernels/tests/common.rs` (u, RTOL, EPS_ONE, FLUSH and
//! the bound used for each kind of kernel).

use super::common::*;
use super::*;
use crate::cpu;
use crate::gpu::kernels::{submit, OptimBuffers, StepUniform};
use crate::spec::Optimizer;
use crate::spec::StepScalars;

// ---------------------------------------------------------------- reductions

#[test]
fn column_sums_match_the_cpu() {
    let _serial = serial();
    let f = fixture();
    for &rows in &[1usize, 3, 7, 63, 65, 128, 784, 1000] {
        for &cols in &[1usize, 7, 65, 300] {
            let x = random(rows * cols, (rows * 7 + cols) as u64);
            let want = cpu::column_sums(&x, rows, cols).expect("cpu column sums");
            // Input at float 1, output at float 2: offsets honoured, neighbours untouched.
            let xb = upload(&f.gpu, &padded(&x, 1));
            let mut forms = Vec::new();
            // Both forms (plain loop, loads batched eight rows ahead) add rows in order.
            for batched in [false, true] {
                let ob = upload(&f.gpu, &padded(&vec![0.0; cols], 2));
                let d = f
                    .kernels
                    .reduce
                    .column_sums_as(&f.gpu, batched, rows, cols, (&xb, 1), (&ob, 2))
                    .expect("record");
                submit(&f.gpu, &[&d]);
                let (got, pad) = split_padded(&read(&f.gpu, &ob, cols + 4), 2);
                assert_untouched("column sums", &pad);
                // Each backend's sum of `rows` terms is within rows u sum|x| of exact, in any order.
                assert_close(&format!("column sums {rows}x{cols} batched={batched}"), &got, &want, |j| {
                    let abs: f64 = (0..rows).map(|i| (x[i * cols + j] as f64).abs()).sum();
                    2.0 * rows as f64 * U * abs
                });
                forms.push(got.iter().map(|v| v.to_bits()).collect::<Vec<u32>>());
            }
            assert_eq!(forms[0], forms[1], "column sums {rows}x{cols}: the two forms differ in bits");
        }
    }
}

/// `scale` is one correctly rounded multiply (Vulkan requires it of `*`): bit for bit.
/// `add_scaled` is a multiply and an add, possibly fused: within 2u (|out| + |alpha x|).
/// The largest length needs more than 65535 workgroups, so the grid folds into y.
#[test]
fn scale_and_add_scaled_match_plain_rust() {
    let _serial = serial();
    let f = fixture();
    let folded = 65_535 * 256 + 1000;
    for &n in &[1usize, 3, 7, 65, 1000, 50_890, folded] {
        let out = random(n, n as u64);
        let x = random(n, n as u64 + 1);
        let alpha = -0.37f32;

        let ob = upload(&f.gpu, &padded(&out, 1));
        let d = f.kernels.reduce.scale(&f.gpu, n, alpha, (&ob, 1)).expect("record scale");
        submit(&f.gpu, &[&d]);
        let (got, pad) = split_padded(&read(&f.gpu, &ob, n + 2), 1);
        assert_untouched("scale", &pad);
        let want: Vec<f32> = out.iter().map(|v| alpha * v).collect();
        assert_close(&format!("scale n={n}"), &got, &want, |_| 0.0);

        let ob = upload(&f.gpu, &padded(&out, 1));
        let xb = upload(&f.gpu, &padded(&x, 2));
        let d = f.kernels.reduce.add_scaled(&f.gpu, n, alpha, (&xb, 2), (&ob, 1)).expect("record add_scaled");
        submit(&f.gpu, &[&d]);
        let (got, pad) = split_padded(&read(&f.gpu, &ob, n + 2), 1);
        assert_untouched("add_scaled", &pad);
        let want: Vec<f32> = out.iter().zip(&x).map(|(o, v)| o + alpha * v).collect();
        assert_close(&format!("add_scaled n={n}"), &got, &want, |i| {
            2.0 * U * ((out[i] as f64).abs() + (alpha as f64 * x[i] as f64).abs())
        });
    }
}

// ---------------------------------------------------------------- optimizers

/// Error bounds of one backend's (p, m, v) after each step, propagated in f64 alongside the
/// CPU reference (whose values stand in for the exact ones):
/// - m, v: `b m + (1 - b) g` rounds at most twice (or once, fused) on each term: `2u` times
///   the terms' magnitudes, plus the previous bound times b.
/// - the Adam update `lr m^ / (sqrt(v^) + eps)`: the errors of m and v through its partial
///   derivatives, plus `12u` relative for its own ops (sqrt and division are a few ULP on
///   Vulkan, the three products correctly rounded).
/// - p: the subtraction rounds (u |p|), the decay `p - lr wd p` another `2u |p|`.
///
/// Both backends obey the bound, so they may differ by twice it.
struct Bounds {
    p: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Bounds {
    fn new(n: usize) -> Self {
        Bounds { p: vec![0.0; n], m: vec![0.0; n], v: vec![0.0; n] }
    }

    /// `[p, m, v]` before the step, `[m, v]` after it (the CPU's).
    fn adam(&mut self, s: &StepScalars, g: &[f32], [p, m_prev, v_prev]: [&[f32]; 3], [m, v]: [&[f32]; 2]) {
        let (b1, b2, lr) = (s.beta1 as f64, s.beta2 as f64, s.lr as f64);
        for i in 0..p.len() {
            let g = g[i] as f64;
            self.m[i] = b1 * self.m[i] + 2.0 * U * (b1 * (m_prev[i] as f64).abs() + (1.0 - b1) * g.abs());
            self.v[i] = b2 * self.v[i] + 2.0 * U * (b2 * v_prev[i] as f64 + (1.0 - b2) * g * g);
            let mh = m[i] as f64 * s.inv_bias1 as f64;
            let sv = (v[i] as f64 * s.inv_bias2 as f64).sqrt();
            let den = sv + s.eps as f64;
            let upd = lr * mh.abs() / den;
            // d upd / d m = lr ib1 / den; d upd / d v = upd ib2 / (2 sv den) (bounded via den^2).
            let dv = if sv > 0.0 { upd * s.inv_bias2 as f64 / (2.0 * sv * den) } else { 0.0 };
            let d_upd = lr * s.inv_bias1 as f64 / den * self.m[i] + dv * self.v[i] + 12.0 * U * upd;
            // The decay's product and subtraction, when it runs.
            let decay = if s.weight_decay > 0.0 { 2.0 * U * (p[i] as f64).abs() } else { 0.0 };
            self.p[i] += d_upd + decay + U * (p[i] as f64).abs();
        }
    }

    fn sgd(&mut self, s: &StepScalars, p: &[f32], g: &[f32], u_prev: &[f32], u: &[f32]) {
        let (mu, lr) = (s.beta1 as f64, s.lr as f64);
        for i in 0..p.len() {
            self.m[i] = mu * self.m[i] + 2.0 * U * (mu * (u_prev[i] as f64).abs() + (g[i] as f64).abs());
            self.p[i] += lr * self.m[i] + 2.0 * U * (lr * (u[i] as f64).abs() + (p[i] as f64).abs());
        }
    }
}

fn check_optimizer(opt: Optimizer, n: usize) {
    let f = fixture();
    let mut p: Vec<f32> = random(n, 900 + n as u64);
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (pb, mb) = (upload(&f.gpu, &p), zeros(&f.gpu, n));
    // SGD leaves v alone: sentinels there prove it.
    let is_sgd = matches!(opt, Optimizer::Sgd { .. });
    let vb = upload(&f.gpu, &vec![if is_sgd { SENTINEL } else { 0.0 }; n]);
    let gb = zeros(&f.gpu, n);
    let step = uniform_buffer(&f.gpu, 32);
    let d = f
        .kernels
        .optim
        .record(&f.gpu, &opt, n, &OptimBuffers { params: &pb, grads: &gb, m: &mb, v: &vb, step: &step })
        .expect("record");
    let mut bounds = Bounds::new(n);
    for t in 1..=3u64 {
        // A new gradient per step, shrinking with t so that the moments partly cancel, and
        // spread over 1 .. 1e-7 across elements so that eps matters for some.
        let g: Vec<f32> = random(n, 1000 + t + n as u64)
            .iter()
            .enumerate()
            .map(|(i, x)| x / t as f32 * 10f32.powi(-((i % 8) as i32)))
            .collect();
        let s = opt.step_scalars(t);
        f.gpu.write(&gb, 0, bytemuck::cast_slice(&g));
        f.gpu.write(&step, 0, bytemuck::bytes_of(&StepUniform::from(s)));
        submit(&f.gpu, &[&d]);
        let (p_prev, m_prev, v_prev) = (p.clone(), m.clone(), v.clone());
        if is_sgd {
            cpu::sgd_step(&mut p, &g, &mut m, &s).expect("cpu sgd");
            bounds.sgd(&s, &p_prev, &g, &m_prev, &m);
        } else {
            cpu::adam_step(&mut p, &g, &mut m, &mut v, &s).expect("cpu adam");
            bounds.adam(&s, &g, [&p_prev, &m_prev, &v_prev], [&m, &v]);
        }
        let name = format!("{opt:?} n={n} step {t}");
        assert_close(&format!("{name} params"), &read(&f.gpu, &pb, n), &p, |i| 2.0 * bounds.p[i] + FLUSH);
        assert_close(&format!("{name} m"), &read(&f.gpu, &mb, n), &m, |i| 2.0 * bounds.m[i] + FLUSH);
        if is_sgd {
            assert_untouched(&format!("{name} v"), &read(&f.gpu, &vb, n));
        } else {
            assert_close(&format!("{name} v"), &read(&f.gpu, &vb, n), &v, |i| 2.0 * bounds.v[i] + FLUSH);
        }
    }
}

/// Lengths that are multiples of 4 run the vec4 kernels (optim_vec4.wgsl), others the scalar.
const OPTIM_SIZES: [usize; 4] = [1, 4, 50_888, 50_890];

#[test]
fn adam_matches_the_cpu_for_three_steps() {
    let _serial = serial();
    for n in OPTIM_SIZES {
        check_optimizer(Optimizer::adam(1e-3), n);
        check_optimizer(
            Optimizer::Adam { lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-7, weight_decay: 0.1 },
            n,
        );
    }
}

#[test]
fn sgd_with_momentum_matches_the_cpu_for_three_steps() {
    let _serial = serial();
    for n in OPTIM_SIZES {
        check_optimizer(Optimizer::sgd(0.05, 0.9), n);
        check_optimizer(Optimizer::sgd(0.1, 0.0), n);
    }
}
