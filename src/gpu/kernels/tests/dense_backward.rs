//! The fused dense backward (`dense_backward.wgsl`) against the launches it replaces, bit for
//! bit: dW and db from `record_with_sums` (every AtB variant that takes the shape on the test
//! adapter) and from `column_sums`, dX from the ABt product with the activation-backward
//! epilogue (every ABt variant), on awkward shapes and every activation; on the first adapter
//! of each other backend (llvmpipe's GL beside lavapipe) against `mm_rb4x4`. And dW, db and
//! the identity's and ReLU's dX against a CPU loop adding in the same order, also bit for bit.
//! `dense_backward_tex` (dX into a texture too) against the same launch without it.

use super::common::*;
use super::*;
use crate::gpu::kernels::{submit, DenseBackwardCall, MatmulCall, OperandTexture, Packed, Variant};
use crate::ops::MatmulForm;
use crate::spec::Activation;

const SHAPES_ROWS: [usize; 4] = [1, 37, 128, 300];
const SHAPES_K: [usize; 2] = [13, 64];
// 16: a multiple of 4, which the vec4 and texture variants need.
const SHAPES_N: [usize; 4] = [1, 10, 16, 17];

/// Offsets of the fused launch's operands, odd where the kernel allows (it loads scalars).
const H_OFF: usize = 3;
const DZ_OFF: usize = 5;
const W_OFF: usize = 7;
const DW_OFF: usize = 2;
const Z_OFF: usize = 1;
const DX_OFF: usize = 6;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = bits(got).iter().zip(bits(want)).position(|(a, b)| *a != b) {
        panic!(
            "{what}: [{i}] = {:e} ({:#x}) but the reference is {:e} ({:#x})",
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        );
    }
}

/// The operands of one shape: `h [rows, k]`, `dz [rows, n]`, `w [k, n]`, `z [rows, k]`.
struct Operands {
    h: Vec<f32>,
    dz: Vec<f32>,
    w: Vec<f32>,
    z: Vec<f32>,
}

fn operands(rows: usize, n: usize, k: usize, seed: u64) -> Operands {
    Operands {
        h: random(rows * k, seed),
        dz: random(rows * n, seed + 1),
        w: random(k * n, seed + 2),
        z: random(rows * k, seed + 3).iter().map(|v| v * 4.0).collect(),
    }
}

/// `(dW, db, dX)` of the fused launch, checking that nothing outside them was written.
fn fused(
    gpu: &Gpu,
    kernels: &Kernels,
    shape: (usize, usize, usize),
    o: &Operands,
    act: Activation,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    fused_into(gpu, kernels, shape, o, act, None)
}

/// [`fused`], with dX also written into `dx_texture` when given (`dense_backward_tex`).
fn fused_into(
    gpu: &Gpu,
    kernels: &Kernels,
    (rows, n, k): (usize, usize, usize),
    o: &Operands,
    act: Activation,
    dx_texture: Option<&OperandTexture>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = upload(gpu, &padded(&o.h, H_OFF));
    let dz = upload(gpu, &padded(&o.dz, DZ_OFF));
    let w = upload(gpu, &padded(&o.w, W_OFF));
    let z = upload(gpu, &padded(&o.z, Z_OFF));
    // grads: dW at DW_OFF, one sentinel, db, sentinels.
    let db_off = DW_OFF + k * n + 1;
    let grads_len = db_off + n + 3;
    let grads = upload(gpu, &vec![SENTINEL; grads_len]);
    let dx = upload(gpu, &vec![SENTINEL; rows * k + 2 * DX_OFF]);
    let call = DenseBackwardCall {
        rows,
        n,
        k,
        h: (&h, H_OFF),
        dz: (&dz, DZ_OFF),
        w: (&w, W_OFF),
        dw: (&grads, DW_OFF),
        db: db_off,
        act,
        z: (&z, Z_OFF),
        dx: (&dx, DX_OFF),
        dx_texture,
    };
    let d = kernels.dense_backward.record(gpu, &call).expect("record dense_backward");
    submit(gpu, &[&d]);
    let name = format!("dense_backward rows={rows} n={n} k={k} {act:?}");
    let g = read(gpu, &grads, grads_len);
    assert_untouched(&format!("{name} grads"), &g[..DW_OFF]);
    assert_untouched(&format!("{name} grads"), &g[DW_OFF + k * n..db_off]);
    assert_untouched(&format!("{name} grads"), &g[db_off + n..]);
    let (x, x_pad) = split_padded(&read(gpu, &dx, rows * k + 2 * DX_OFF), DX_OFF);
    assert_untouched(&format!("{name} dx"), &x_pad);
    (g[DW_OFF..DW_OFF + k * n].to_vec(), g[db_off..db_off + n].to_vec(), x)
}

/// `(dW, db)` of `record_with_sums` with `variant` (db at the next multiple of 4 after dW,
/// as the texture variants store it), or `None` where the variant does not take the shape.
fn separate_dw(
    gpu: &Gpu,
    kernels: &Kernels,
    variant: Variant,
    (rows, n, k): (usize, usize, usize),
    o: &Operands,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let (h, dz) = (upload(gpu, &o.h), upload(gpu, &o.dz));
    let sums = (k * n).next_multiple_of(4);
    let c = upload(gpu, &vec![SENTINEL; sums + n]);
    let call = MatmulCall::plain(MatmulForm::AtB, k, n, rows, &h, &dz, &c);
    if !kernels.matmul.supports(variant, &call) {
        return None;
    }
    let d =
        kernels.matmul.record_with_sums(gpu, variant, &call, Packed::NONE, Some(sums)).expect("record dW");
    submit(gpu, &[&d]);
    let all = read(gpu, &c, sums + n);
    Some((all[..k * n].to_vec(), all[sums..].to_vec()))
}

/// db from `column_sums` (the unfused path's).
fn separate_db(gpu: &Gpu, kernels: &Kernels, (rows, n): (usize, usize), o: &Operands) -> Vec<f32> {
    let (dz, out) = (upload(gpu, &o.dz), upload(gpu, &vec![SENTINEL; n]));
    let d = kernels.reduce.column_sums(gpu, rows, n, (&dz, 0), (&out, 0)).expect("record column sums");
    submit(gpu, &[&d]);
    read(gpu, &out, n)
}

/// dX from the ABt product with the activation-backward epilogue, or `None` where `variant`
/// does not take the shape.
fn separate_dx(
    gpu: &Gpu,
    kernels: &Kernels,
    variant: Variant,
    (rows, n, k): (usize, usize, usize),
    o: &Operands,
    act: Activation,
) -> Option<Vec<f32>> {
    let (dz, w, z) = (upload(gpu, &o.dz), upload(gpu, &o.w), upload(gpu, &o.z));
    let c = upload(gpu, &vec![SENTINEL; rows * k]);
    let call = MatmulCall {
        form: MatmulForm::ABt,
        m: rows,
        n: k,
        k: n,
        a: (&dz, 0),
        b: (&w, 0),
        c: (&c, 0),
        bias: None,
        act,
        z: Some((&z, 0)),
        act_backward: true,
    };
    if !kernels.matmul.supports(variant, &call) {
        return None;
    }
    let d = kernels.matmul.record(gpu, variant, &call).expect("record dX");
    submit(gpu, &[&d]);
    Some(read(gpu, &c, rows * k))
}

/// The CPU loops in the kernels' order: `(dW, db, dX before act')`.
fn cpu_in_order((rows, n, k): (usize, usize, usize), o: &Operands) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dw = vec![0.0f32; k * n];
    for q in 0..k {
        for j in 0..n {
            let mut acc = 0.0f32;
            for r in 0..rows {
                acc += o.h[r * k + q] * o.dz[r * n + j];
            }
            dw[q * n + j] = acc;
        }
    }
    let db = (0..n)
        .map(|j| {
            let mut acc = 0.0f32;
            for r in 0..rows {
                acc += o.dz[r * n + j];
            }
            acc
        })
        .collect();
    let mut dx = vec![0.0f32; rows * k];
    for r in 0..rows {
        for q in 0..k {
            let mut acc = 0.0f32;
            for j in 0..n {
                acc += o.dz[r * n + j] * o.w[q * n + j];
            }
            dx[r * k + q] = acc;
        }
    }
    (dw, db, dx)
}

/// Every shape and activation on one device, against `variants`' separate launches; returns
/// the variants that ran for dW and for dX.
fn compare_on(gpu: &Gpu, kernels: &Kernels, variants: &[Variant], label: &str) -> [Vec<Variant>; 2] {
    let textures = &mut 0usize;
    let mut ran_dw = std::collections::HashSet::new();
    let mut ran_dx = std::collections::HashSet::new();
    let mut seed = 1000;
    for rows in SHAPES_ROWS {
        for k in SHAPES_K {
            for n in SHAPES_N {
                seed += 10;
                let shape = (rows, n, k);
                let o = operands(rows, n, k, seed);
                let name = format!("{label} rows={rows} n={n} k={k}");
                let (cpu_dw, cpu_db, cpu_dx) = cpu_in_order(shape, &o);
                let db_sums = separate_db(gpu, kernels, (rows, n), &o);
                assert_bits(&format!("{name}: CPU db vs column_sums"), &cpu_db, &db_sums);
                let dws: Vec<_> = variants
                    .iter()
                    .filter_map(|&v| separate_dw(gpu, kernels, v, shape, &o).map(|r| (v, r)))
                    .collect();
                for (v, (dw, db)) in &dws {
                    ran_dw.insert(*v);
                    assert_bits(&format!("{name}: {} dW vs CPU", v.name()), dw, &cpu_dw);
                    assert_bits(&format!("{name}: {} db vs column_sums", v.name()), db, &db_sums);
                }
                for act in Activation::ALL {
                    let (dw, db, dx) = fused(gpu, kernels, shape, &o, act);
                    assert_bits(&format!("{name} {act:?}: fused dW vs CPU"), &dw, &cpu_dw);
                    assert_bits(&format!("{name} {act:?}: fused db vs CPU"), &db, &cpu_db);
                    if matches!(act, Activation::Identity | Activation::Relu) {
                        let want = crate::cpu::activation_backward(&cpu_dx, &o.z, act).expect("cpu act'");
                        assert_bits(&format!("{name} {act:?}: fused dX vs CPU"), &dx, &want);
                    }
                    // Into a texture as well (k a multiple of 4): the same buffers, and the
                    // texture holding dX as pack_texture lays it out (its extra row untouched).
                    if kernels.dense_backward.writes_texture(k) {
                        let tex =
                            kernels.matmul.operand_texture(gpu, rows, k).expect("texture").expect("fits");
                        let (tdw, tdb, tdx) = fused_into(gpu, kernels, shape, &o, act, Some(&tex));
                        assert_bits(&format!("{name} {act:?}: dW with the texture"), &tdw, &dw);
                        assert_bits(&format!("{name} {act:?}: db with the texture"), &tdb, &db);
                        assert_bits(&format!("{name} {act:?}: dX with the texture"), &tdx, &dx);
                        let texels = read_texture(gpu, &tex);
                        assert_bits(&format!("{name} {act:?}: dX's texture"), &texels[..rows * k], &dx);
                        assert!(
                            texels[rows * k..].iter().all(|v| *v == 0.0),
                            "{name}: the texture's extra row"
                        );
                        *textures += 1;
                    }
                    let mut any = false;
                    for &v in variants {
                        if let Some(want) = separate_dx(gpu, kernels, v, shape, &o, act) {
                            any = true;
                            ran_dx.insert(v);
                            assert_bits(&format!("{name} {act:?}: fused dX vs {}", v.name()), &dx, &want);
                        }
                    }
                    assert!(any, "{name}: no ABt variant took the shape");
                }
                assert!(!dws.is_empty(), "{name}: no AtB variant took the shape");
            }
        }
    }
    assert!(ran_dw.contains(&Variant::Rb4x4) && ran_dx.contains(&Variant::Rb4x4), "{label}: rb4x4 never ran");
    // Mesa's software drivers write storage textures: the texture path ran for k = 64.
    if label.contains("llvmpipe") {
        assert!(*textures > 0, "{label}: dense_backward_tex never ran");
    }
    [ran_dw.into_iter().collect(), ran_dx.into_iter().collect()]
}

#[test]
fn fused_dense_backward_has_the_bits_of_the_separate_launches() {
    let _serial = serial();
    let f = fixture();
    let [dw, dx] = compare_on(&f.gpu, &f.kernels, &Variant::ALL, &test_adapter().label());
    // Every variant took some shape (the texture ones where the device has textures for them,
    // the subgroup ones where it has subgroups of 8).
    let textures = f.kernels.matmul.operand_texture(&f.gpu, 4, 4).expect("texture").is_some();
    let subgroups = f.gpu.has_subgroups_of(8);
    let runs_here = |v: &Variant| (textures || !v.reads_textures()) && (subgroups || !v.needs_subgroups());
    for v in Variant::ALL.into_iter().filter(runs_here) {
        let form = v.only_form();
        assert!(
            form == Some(MatmulForm::ABt) || form == Some(MatmulForm::AB) || dw.contains(&v),
            "{} took no dW",
            v.name()
        );
        assert!(
            form == Some(MatmulForm::AtB) || form == Some(MatmulForm::AB) || dx.contains(&v),
            "{} took no dX",
            v.name()
        );
    }
    // The first adapter of each other backend (llvmpipe's GL beside lavapipe), against the
    // register-blocked product (compiling every variant there takes minutes).
    let first = test_adapter();
    let mut seen = vec![first.backend.clone()];
    for a in gpu::list_adapters() {
        if seen.contains(&a.backend) {
            continue;
        }
        seen.push(a.backend.clone());
        let gpu = gpu::open(&AdapterSelection::Indices(vec![a.index]), 1)
            .unwrap_or_else(|e| panic!("opening {}: {e}", a.label()))
            .remove(0);
        let kernels = Kernels::new(&gpu).expect("kernels");
        compare_on(&gpu, &kernels, &[Variant::Rb4x4], &a.label());
    }
}

#[test]
fn fused_dense_backward_shape_errors_are_errors() {
    let _serial = serial();
    let f = fixture();
    let [h, dz, w, g, z, dx] = [(); 6].map(|_| zeros(&f.gpu, 64));
    let small = zeros(&f.gpu, 4);
    let good = DenseBackwardCall {
        rows: 2,
        n: 2,
        k: 3,
        h: (&h, 0),
        dz: (&dz, 0),
        w: (&w, 0),
        dw: (&g, 0),
        db: 6,
        act: Activation::Relu,
        z: (&z, 0),
        dx: (&dx, 0),
        dx_texture: None,
    };
    f.kernels.dense_backward.record(&f.gpu, &good).expect("a valid call records");
    let cases: [(&str, DenseBackwardCall<'_>); 8] = [
        ("dx past its buffer", DenseBackwardCall { dx: (&small, 0), ..good }),
        ("too wide", DenseBackwardCall { n: 33, db: 40, ..good }),
        ("no rows", DenseBackwardCall { rows: 0, ..good }),
        ("no inputs", DenseBackwardCall { k: 0, ..good }),
        ("db overlaps dW", DenseBackwardCall { db: 5, ..good }),
        ("z past its buffer", DenseBackwardCall { z: (&z, 60), ..good }),
        ("dx is the input", DenseBackwardCall { dx: (&h, 8), ..good }),
        ("dx is the gradients", DenseBackwardCall { dx: (&g, 20), ..good }),
    ];
    for (what, call) in cases {
        assert!(f.kernels.dense_backward.record(&f.gpu, &call).is_err(), "{what}: recorded");
    }
    // dX into a texture: only whole texels (k a multiple of 4), and a texture that holds it.
    let tex =
        |rows, cols| f.kernels.matmul.operand_texture(&f.gpu, rows, cols).expect("texture").expect("fits");
    let (t2x4, t1x4, t2x8) = (tex(2, 4), tex(1, 4), tex(2, 8));
    let four = DenseBackwardCall { k: 4, db: 8, ..good };
    f.kernels
        .dense_backward
        .record(&f.gpu, &DenseBackwardCall { dx_texture: Some(&t2x4), ..four })
        .expect("k = 4");
    let texture_cases = [
        ("k = 3", DenseBackwardCall { dx_texture: Some(&t2x4), ..good }),
        ("a texture of one row", DenseBackwardCall { dx_texture: Some(&t1x4), ..four }),
        ("a texture 8 wide", DenseBackwardCall { dx_texture: Some(&t2x8), ..four }),
    ];
    for (what, call) in texture_cases {
        let err = f.kernels.dense_backward.record(&f.gpu, &call).expect_err(what);
        assert!(err.to_string().contains("texture"), "{what}: {err}");
    }
}
