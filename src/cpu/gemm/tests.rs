//! The product kernel against f64, across instruction sets, epilogues and threads.

use super::*;
use crate::cpu::{activation_backward, activation_forward, add_bias, bits, test_values as values};

/// Every instruction set this CPU can run, best first; the portable one always.
fn isas() -> Vec<Isa> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            all.push(Isa::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            all.push(Isa::Avx2Fma);
        }
    }
    all.push(Isa::Portable);
    all
}

/// Shapes around the block sizes (6, 8, 12, 14 rows; 16-lane vectors; 64-column panels), the
/// passes over `k` (at most 128 rows of `B` each) and the packed panels of a `B` wider than one
/// panel (three passes of 100 over three panels, the last partial).
const SHAPES: [(usize, usize, usize); 10] = [
    (29, 150, 300),
    (1, 1, 1),
    (5, 17, 3),
    (13, 63, 100),
    (29, 65, 7),
    (7, 130, 33),
    (6, 64, 784),
    (14, 16, 9),
    (15, 10, 64),
    (40, 33, 2),
];

/// `A` as `[m, k]` (`transposed` false) or `[k, m]` read through its strides.
fn operand(a: &[f32], m: usize, k: usize, transposed: bool) -> StridedA<'_> {
    if transposed {
        StridedA { data: a, rs: 1, cs: m }
    } else {
        StridedA { data: a, rs: k, cs: 1 }
    }
}

#[test]
fn every_isa_matches_f64_in_both_layouts_of_a() {
    let u = f64::powi(2.0, -24);
    for isa in isas() {
        for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
            for transposed in [false, true] {
                let (a, b) = (values(m * k, s as u64), values(k * n, 100 + s as u64));
                let sa = operand(&a, m, k, transposed);
                let mut c = vec![f32::NAN; m * n];
                gemm_on(isa, MIN_TASK_MACS, sa, &b, &mut c, (m, n, k), Epilogue::None).expect("gemm");
                for i in 0..m {
                    for j in 0..n {
                        let terms: Vec<f64> =
                            (0..k).map(|p| a[i * sa.rs + p * sa.cs] as f64 * b[p * n + j] as f64).collect();
                        let exact: f64 = terms.iter().sum();
                        // The k-term dot product bound of src/gpu/kernels/tests/matmul.rs: (2k + 1) u sum |a b|.
                        let tol = (2 * k + 1) as f64 * u * terms.iter().map(|t| t.abs()).sum::<f64>();
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - exact).abs() <= tol,
                            "{isa:?} [{m}, {n}, {k}] transposed {transposed}: C[{i}, {j}] = {got}, exact {exact}"
                        );
                    }
                }
            }
        }
    }
}

/// Each vector kernel sums every output as one chain of FMAs in order of `k`, from zero:
/// `fma(a[k-1], b[k-1], ... fma(a[0], b[0], 0))`, bit for bit, however the product is cut
/// into blocks, panels and passes over `k` (what keeps every cut, thread count and
/// instruction set on the same bits).
#[test]
fn the_vector_kernels_sum_each_output_in_order_of_k() {
    for isa in isas().into_iter().filter(|&i| i != Isa::Portable) {
        for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
            for transposed in [false, true] {
                let (a, b) = (values(m * k, 30 + s as u64), values(k * n, 60 + s as u64));
                let sa = operand(&a, m, k, transposed);
                let mut c = vec![f32::NAN; m * n];
                gemm_on(isa, MIN_TASK_MACS, sa, &b, &mut c, (m, n, k), Epilogue::None).expect("gemm");
                for i in 0..m {
                    for j in 0..n {
                        let chain =
                            (0..k).fold(0.0f32, |acc, p| a[i * sa.rs + p * sa.cs].mul_add(b[p * n + j], acc));
                        assert_eq!(
                            c[i * n + j].to_bits(),
                            chain.to_bits(),
                            "{isa:?} [{m}, {n}, {k}] transposed {transposed}: C[{i}, {j}]"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn avx2_gives_the_bits_of_avx512() {
    let vector: Vec<Isa> = isas().into_iter().filter(|&i| i != Isa::Portable).collect();
    if vector.len() < 2 {
        return; // One vector instruction set on this CPU: nothing to compare.
    }
    for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
        let (a, b) = (values(m * k, s as u64), values(k * n, 7 + s as u64));
        let run = |isa| {
            let mut c = vec![0.0; m * n];
            gemm_on(isa, MIN_TASK_MACS, operand(&a, m, k, false), &b, &mut c, (m, n, k), Epilogue::None)
                .expect("gemm");
            bits(&c)
        };
        assert_eq!(run(vector[0]), run(vector[1]), "[{m}, {n}, {k}]");
    }
}

/// The fused epilogues compute what the separate ops do, bit for bit: `add_bias` then
/// `activation_forward`, and `activation_backward` of the product.
#[test]
fn fused_epilogues_give_the_bits_of_separate_ops() {
    for isa in isas() {
        for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
            let (a, b) = (values(m * k, s as u64), values(k * n, 50 + s as u64));
            let (bias, z) = (values(n, 9 + s as u64), values(m * n, 80 + s as u64));
            let mut plain = vec![0.0; m * n];
            gemm_on(isa, MIN_TASK_MACS, operand(&a, m, k, false), &b, &mut plain, (m, n, k), Epilogue::None)
                .expect("gemm");
            for act in Activation::ALL {
                let mut want_z = plain.clone();
                add_bias(&mut want_z, &bias).expect("bias");
                let want_h = activation_forward(&want_z, act);
                let (mut got_z, mut got_h) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                let epilogue = Epilogue::Bias { bias: &bias, act, h: Some(&mut got_h) };
                gemm_on(isa, MIN_TASK_MACS, operand(&a, m, k, false), &b, &mut got_z, (m, n, k), epilogue)
                    .expect("gemm");
                assert_eq!(bits(&got_z), bits(&want_z), "{isa:?} {act:?} [{m}, {n}, {k}]: z");
                assert_eq!(bits(&got_h), bits(&want_h), "{isa:?} {act:?} [{m}, {n}, {k}]: h");

                let want_dz = activation_backward(&plain, &z, act).expect("backward");
                let mut got_dz = vec![f32::NAN; m * n];
                let epilogue = Epilogue::ActGrad { act, z: &z };
                gemm_on(isa, MIN_TASK_MACS, operand(&a, m, k, false), &b, &mut got_dz, (m, n, k), epilogue)
                    .expect("gemm");
                assert_eq!(bits(&got_dz), bits(&want_dz), "{isa:?} {act:?} [{m}, {n}, {k}]: dz");
            }
        }
    }
}

/// An elementwise rule with some state, Adam-like: what the update epilogue is for.
fn rule(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = 0.5 * *m + g;
        *v += g * g;
        *p -= 0.01 * *m / (v.sqrt() + 1e-3);
    }
}

/// The update epilogue stores the product and updates every element from it, as the product
/// followed by one pass of the rule over all of it: with every instruction set, on the
/// awkward shapes, and cut over three threads.
#[test]
fn the_update_epilogue_gives_the_bits_of_the_product_then_the_rule() {
    let check = |isa: Isa, min_task: usize, (m, n, k): (usize, usize, usize), seed: u64| {
        let (a, b) = (values(m * k, seed), values(k * n, 50 + seed));
        let state = [values(m * n, 7 + seed), values(m * n, 8 + seed), values(m * n, 9 + seed)];
        let mut g = vec![0.0; m * n];
        gemm_on(isa, min_task, operand(&a, m, k, true), &b, &mut g, (m, n, k), Epilogue::None).expect("gemm");
        let [mut want_p, mut want_m, mut want_v] = state.clone();
        rule(&mut want_p, &g, &mut want_m, &mut want_v);
        let [mut got_p, mut got_m, mut got_v] = state;
        let mut got_g = vec![f32::NAN; m * n];
        let epilogue = Epilogue::Update {
            rule: &rule,
            state: State { params: &mut got_p, m: &mut got_m, v: &mut got_v },
        };
        gemm_on(isa, min_task, operand(&a, m, k, true), &b, &mut got_g, (m, n, k), epilogue).expect("gemm");
        let name = format!("{isa:?} [{m}, {n}, {k}] min task {min_task}");
        assert_eq!(bits(&got_g), bits(&g), "{name}: gradients");
        assert_eq!(
            (bits(&got_p), bits(&got_m), bits(&got_v)),
            (bits(&want_p), bits(&want_m), bits(&want_v)),
            "{name}"
        );
    };
    for isa in isas() {
        for (s, &shape) in SHAPES.iter().enumerate() {
            check(isa, MIN_TASK_MACS, shape, s as u64);
        }
    }
    // Cut in three by rows (each part updates its own rows) on a pool of three threads.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().expect("pool");
    pool.install(|| check(Isa::detect(), 1 << 10, (301, 70, 90), 3));
}

/// Rows cut over three threads (an uneven split) give one thread's bits, epilogue included.
#[test]
fn a_split_over_threads_gives_the_bits_of_one_thread() {
    let (m, n, k) = (301, 70, 90);
    let (a, b, bias) = (values(m * k, 1), values(k * n, 2), values(n, 3));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        pool.install(|| {
            let (mut z, mut h) = (vec![0.0; m * n], vec![0.0; m * n]);
            let epilogue = Epilogue::Bias { bias: &bias, act: Activation::Gelu, h: Some(&mut h) };
            gemm(operand(&a, m, k, true), &b, &mut z, (m, n, k), epilogue).expect("gemm");
            z.iter().chain(&h).map(|v| v.to_bits()).collect::<Vec<_>>()
        })
    };
    assert!(m * n * k / MIN_TASK_MACS >= 3, "the product must be large enough to be split in three");
    assert_eq!(run(3), run(1));
}

#[test]
fn bad_lengths_are_errors_and_write_nothing() {
    let (a, b, bias) = (vec![1.0; 12], vec![1.0; 8], vec![0.0; 2]);
    let sa = StridedA { data: &a, rs: 3, cs: 1 };
    // Each row: why it must fail, m, n, k, B's length, C's length, bias length.
    let table = [
        ("m = 0", 0, 2, 3, 6, 0, 2),
        ("k = 0", 4, 2, 0, 0, 8, 2),
        ("A too short for m = 5", 5, 2, 3, 6, 10, 2),
        ("B one short", 4, 2, 3, 5, 8, 2),
        ("C one long", 4, 2, 3, 6, 9, 2),
        ("bias one short", 4, 2, 3, 6, 8, 1),
    ];
    for (why, m, n, k, b_len, c_len, bias_len) in table {
        let mut c = vec![7.0; c_len];
        let epilogue = Epilogue::Bias { bias: &bias[..bias_len], act: Activation::Relu, h: None };
        let r = gemm(sa, &b[..b_len], &mut c, (m, n, k), epilogue);
        assert!(matches!(r, Err(Error::Shape(_))), "{why}: {r:?}");
        assert!(c.iter().all(|&v| v == 7.0), "{why}: C was written");
    }
    // An update's parameters or moments of the wrong length: nothing is written.
    for short in 0..3 {
        let mut state = [vec![5.0; 8], vec![5.0; 8], vec![5.0; 8]];
        state[short].pop();
        let mut c = vec![7.0; 8];
        let [p, m, v] = &mut state;
        let epilogue = Epilogue::Update { rule: &rule, state: State { params: p, m, v } };
        let r = gemm(sa, &b[..6], &mut c, (4, 2, 3), epilogue);
        assert!(matches!(r, Err(Error::Shape(_))), "state {short} one short: {r:?}");
        assert!(c.iter().all(|&v| v == 7.0) && state.iter().flatten().all(|&v| v == 5.0), "written");
    }
    let mut c = vec![0.0; 8];
    let z = vec![0.0; 7];
    let r = gemm(sa, &b[..6], &mut c, (4, 2, 3), Epilogue::ActGrad { act: Activation::Tanh, z: &z });
    assert!(matches!(r, Err(Error::Shape(_))), "z one short: {r:?}");
}

#[test]
fn transpose_moves_every_element() {
    let (rows, cols) = (13, 21);
    let src = values(rows * cols, 4);
    let mut dst = vec![0.0; rows * cols];
    transpose_into(&src, rows, cols, &mut dst).expect("transpose");
    for r in 0..rows {
        for c in 0..cols {
            assert_eq!(dst[c * rows + r], src[r * cols + c], "[{r}, {c}]");
        }
    }
    assert!(transpose_into(&src, rows, cols, &mut dst[1..]).is_err(), "a short destination");
}
