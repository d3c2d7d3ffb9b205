//! [`Layer::Dense`](crate::spec::Layer::Dense) on the CPU: `z = x W + b`, `h = act(z)`, and
//! its backward (`dW = x^T dz`, `db` = column sums of `dz`, `dx = dz W^T` with the layer
//! below's activation derivative fused). As its GPU twin (`gpu/replica/layers/dense.rs`), the
//! bias and activation run in the forward product's epilogue and the derivative in the input
//! gradient's (`cpu/gemm.rs`).
//!
//! A layer with many weights splits its inputs in two halves at `h` ([`input_split`]), and
//! each half's share of the work runs on its own thread, the first on the calling thread and
//! the second on the other (rayon::join): the forward products `x[:, ..h] W[..h]` and
//! `x[:, h..] W[h..]`, the weight-gradient rows `dW[..h]` and `dW[h..]`, and the optimizer's
//! update of those rows (in the product's epilogue during a training step, in `cpu/mlp.rs`
//! when the update is applied apart). So each thread reads and writes the
//! same half of the weights, gradients and moments at every step and keeps them in its own
//! core's cache; cutting the products by batch rows instead had both threads read all of the
//! weights that the other had just updated. A split layer's `z` is `(z_lo + z_hi) + b`, the
//! two halves' sums added: other roundings than one sum over all inputs, the same on any
//! number of threads, since the split depends on the layer's shape only.
//!
//! A split layer's input may also come as each half's nonzeros (`cpu/sparse.rs`: the CPU
//! executor gathers mostly-zero data, such as MNIST's pixels, that way): its forward products
//! and weight-gradient rows then skip the zero inputs' multiply-adds and give the same bits, and
//! each half's weight update runs after its gradient rows instead of in their epilogue.
//!
//! In a step, a layer that does not split and has a dense layer below (the MNIST model's
//! second) asks for its weight gradient, with the update in a training step, and its input
//! gradient at once (`rayon::join`), so that the other thread, idle in this middle part of the
//! step, can take one of them: they share only `dz`, which both read, since the input gradient
//! reads the copy `W^T` and not the weights being updated. Running them at once changes no bit;
//! it gained little and within the noise on a Zen 3 (paired epoch ratios 0.96-0.98;
//! BENCHMARKS.md, "A Zen 3 again").

use crate::error::{Error, Result};
use crate::spec::{Activation, LayerSlots};

use super::super::activation::forward_span;
use super::super::column_sums_into;
use super::super::gemm::{gemm, gemm_part, transpose_into, Epilogue, StridedA};
use super::super::sparse::{self, Csr, Rhs, SparseInput};
use super::super::threads::tasks;
use super::{LayerInput, OutputGrad, Params};

/// Layers with at least this many weights split their inputs (the MNIST model's first layer,
/// 784 x 64; not its second, 64 x 10).
const SPLIT_MIN_WEIGHTS: usize = 1 << 14;
/// A half is cut further, by rows, only when each thread would get this many multiply-adds:
/// large batches (evaluation's 1000 rows), where moving the weights costs little next to the
/// product.
const HALF_TASK_MACS: usize = 1 << 22;
/// The same for a half's product over its nonzeros, counting the multiply-adds it executes:
/// a quarter as many, since the sparse kernel, which reads a row of `B` per nonzero, runs at
/// about a quarter of the dense kernel's rate (BENCHMARKS.md, "A faster Zen 3"), so the parts
/// take about as long. The MNIST model's training steps stay whole (about 0.6 M at batch 128).
const SPARSE_HALF_TASK_MACS: usize = HALF_TASK_MACS / 4;
/// The same from a thread outside rayon's pool, where a split costs tens of microseconds.
const SPARSE_HALF_TASK_MACS_OUTSIDE: usize = 1 << 23;

/// Where the layer splits its inputs: about half-way, at a multiple of 16 (so that each half
/// of a row starts on a 64-byte boundary when the row does), or `None` for a small layer.
pub(crate) fn input_split(slots: &LayerSlots) -> Option<usize> {
    let h = slots.inputs / 2 / 16 * 16;
    (slots.inputs * slots.outputs >= SPLIT_MIN_WEIGHTS && h > 0).then_some(h)
}

/// Forward over `rows` rows. `x: [rows, inputs]`, `z: [rows, outputs]` receives `x W + b`;
/// `h: [rows, outputs]`, when given, receives `act(z)` (the last layer's `z` is what the loss
/// reads, so it needs no `h`). `z_hi: [rows, outputs]` is scratch for a split layer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    slots: &LayerSlots,
    activation: Activation,
    params: &[f32],
    x: LayerInput<'_>,
    z: &mut [f32],
    h: Option<&mut [f32]>,
    z_hi: &mut [f32],
    rows: usize,
) -> Result<()> {
    let (inp, out) = (slots.inputs, slots.outputs);
    let w = &params[slots.weight..slots.weight + inp * out];
    let bias = &params[slots.bias..slots.bias + out];
    let Some(split) = input_split(slots) else {
        // x: [rows, inp] row-major; W: [inp, out] row-major, read in place.
        let LayerInput::Whole(x) = x else {
            return Err(Error::Shape("a layer that does not split its inputs got them in halves".into()));
        };
        let x = StridedA { data: x, rs: inp, cs: 1 };
        return gemm(x, w, z, (rows, out, inp), Epilogue::Bias { bias, act: activation, h });
    };
    // z_lo = x[:, ..split] W[..split] into z, z_hi = x[:, split..] W[split..].
    let (w_lo, w_hi) = w.split_at(split * out);
    let z_hi = z_hi.get_mut(..rows * out).ok_or_else(|| Error::Shape("z_hi holds too few rows".into()))?;
    let (lo, hi) = match x.halves(inp, split) {
        Some((x_lo, x_hi)) => {
            let x_lo = StridedA { data: x_lo.data, rs: x_lo.ld, cs: 1 };
            let x_hi = StridedA { data: x_hi.data, rs: x_hi.ld, cs: 1 };
            rayon::join(
                || gemm_part(HALF_TASK_MACS, x_lo, w_lo, z, (rows, out, split), Epilogue::None),
                || gemm_part(HALF_TASK_MACS, x_hi, w_hi, z_hi, (rows, out, inp - split), Epilogue::None),
            )
        }
        // The halves' nonzeros: the same sums (`cpu/sparse.rs`).
        None => {
            let (x_lo, x_hi) = sparse_halves(x)?;
            rayon::join(
                || sparse_rows(x_lo.by_row, w_lo, out, z, Epilogue::None),
                || sparse_rows(x_hi.by_row, w_hi, out, z_hi, Epilogue::None),
            )
        }
    };
    lo?;
    hi?;
    // z = (z_lo + z_hi) + b, then h = act(z), row by row while the row is in L1.
    let mut h = h;
    for (r, (z, z_hi)) in z.chunks_exact_mut(out).zip(z_hi.chunks_exact(out)).enumerate() {
        for ((z, &z_hi), &b) in z.iter_mut().zip(z_hi).zip(bias) {
            *z = (*z + z_hi) + b;
        }
        if let Some(h) = h.as_deref_mut() {
            forward_span(z, activation, &mut h[r * out..(r + 1) * out]);
        }
    }
    Ok(())
}

/// Backward over `rows` rows from `dz: [rows, outputs]`, the gradient of the pre-activation:
/// `dW = x^T dz` and `db = column sums of dz` into their slots of `grads`, and, when `below`
/// is given (every layer but the first: `x` is data there), `dz_below = (dz W^T) * act'(z)`.
/// `wt` is scratch of at least `inputs * outputs` floats for `W^T`.
///
/// With [`Params::Update`], the optimizer step is fused in: each thread's rows of `dW` update
/// their weights once that thread's part of the product is done (the weight gradient's
/// epilogue), and `db` its biases. `W^T` is copied before, so the input gradient uses the
/// weights of the forward pass. Each element's update is the one a separate pass would make.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    slots: &LayerSlots,
    params: &mut Params<'_>,
    grads: &mut [f32],
    x: LayerInput<'_>,
    dz: &[f32],
    below: Option<OutputGrad<'_>>,
    wt: &mut [f32],
    rows: usize,
) -> Result<()> {
    let (inp, out) = (slots.inputs, slots.outputs);
    // dx will need W^T: [out, inp], copied before the weights change.
    let wt = match below {
        Some(_) => {
            let wt =
                wt.get_mut(..inp * out).ok_or_else(|| Error::Shape("W^T's scratch is too small".into()))?;
            transpose_into(&params.values()[slots.weight..slots.weight + inp * out], inp, out, wt)?;
            wt
        }
        None => &mut [],
    };
    // An unsplit layer's two gradients at once (see the module's comment); a split layer's
    // weight-gradient halves already take both threads, each its own half of the weights.
    if input_split(slots).is_none() && below.is_some() {
        let (w, i) = rayon::join(
            || weight_gradient(slots, params, grads, x, dz, rows),
            || input_gradient(below, dz, wt, (rows, inp, out)),
        );
        w?;
        return i;
    }
    weight_gradient(slots, params, grads, x, dz, rows)?;
    input_gradient(below, dz, wt, (rows, inp, out))
}

/// `dW = x^T dz` and `db` = column sums of `dz` into their slots of `grads`, each with its
/// update when `params` is [`Params::Update`] (the weights' in the product's epilogue, on the
/// thread that computed their rows).
fn weight_gradient(
    slots: &LayerSlots,
    params: &mut Params<'_>,
    grads: &mut [f32],
    x: LayerInput<'_>,
    dz: &[f32],
    rows: usize,
) -> Result<()> {
    let (inp, out) = (slots.inputs, slots.outputs);
    let (weights, biases) = (slots.weight..slots.weight + inp * out, slots.bias..slots.bias + out);
    let epilogue = match params {
        Params::Read(_) => Epilogue::None,
        Params::Update { state, rule } => {
            Epilogue::Update { rule: *rule, state: state.slice(weights.clone()) }
        }
    };
    let dw = &mut grads[weights];
    match (input_split(slots), x) {
        (None, LayerInput::Whole(x)) => {
            // dW = x^T dz: [inp, out]; x^T(i, p) = x[p * inp + i].
            gemm(StridedA { data: x, rs: 1, cs: inp }, dz, dw, (inp, out, rows), epilogue)?;
        }
        (Some(split), x) => {
            // dW's rows ..split and split.. from each half of x, each on its own thread; a
            // half's transpose is read through its strides, or its nonzeros by column.
            let (dw_lo, dw_hi) = dw.split_at_mut(split * out);
            let (e_lo, e_hi) = split_update(epilogue, split * out);
            let (lo, hi) = match x.halves(inp, split) {
                Some((x_lo, x_hi)) => {
                    let x_lo = StridedA { data: x_lo.data, rs: 1, cs: x_lo.ld };
                    let x_hi = StridedA { data: x_hi.data, rs: 1, cs: x_hi.ld };
                    rayon::join(
                        || gemm_part(HALF_TASK_MACS, x_lo, dz, dw_lo, (split, out, rows), e_lo),
                        || gemm_part(HALF_TASK_MACS, x_hi, dz, dw_hi, (inp - split, out, rows), e_hi),
                    )
                }
                None => {
                    let (x_lo, x_hi) = sparse_halves(x)?;
                    rayon::join(
                        || sparse_weight_rows(x_lo, dz, out, dw_lo, e_lo),
                        || sparse_weight_rows(x_hi, dz, out, dw_hi, e_hi),
                    )
                }
            };
            lo?;
            hi?;
        }
        (None, LayerInput::Halves(..) | LayerInput::Sparse(..)) => {
            return Err(Error::Shape(
                "a layer that does not split its inputs got them in halves or as nonzeros".into(),
            ));
        }
    }
    column_sums_into(dz, rows, out, &mut grads[biases.clone()])?;
    if let Params::Update { state, rule } = params {
        state.slice(biases.clone()).update(*rule, 0..out, &grads[biases]);
    }
    Ok(())
}

/// The halves' nonzeros of a split layer's input given as nonzeros.
fn sparse_halves(x: LayerInput<'_>) -> Result<(SparseInput<'_>, SparseInput<'_>)> {
    match x {
        LayerInput::Sparse(lo, hi) => Ok((lo, hi)),
        _ => Err(Error::Shape("a split layer's input is neither dense nor nonzeros".into())),
    }
}

/// One input half's rows of `dW = x^T dz` from its nonzeros by column (the same bits as the
/// dense product), then the epilogue's update of those weights ([`sparse_rows`]).
fn sparse_weight_rows(
    x: SparseInput<'_>,
    dz: &[f32],
    out: usize,
    dw: &mut [f32],
    epilogue: Epilogue<'_>,
) -> Result<()> {
    let xt = x
        .by_column
        .ok_or_else(|| Error::Shape("a weight gradient needs its nonzeros laid out by column".into()))?;
    sparse_rows(xt, dz, out, dw, epilogue)
}

/// `c = a b` for a half's nonzeros `a` and `b: [a.cols(), n]` (the dense product's bits:
/// `cpu/sparse.rs`), then, with [`Epilogue::Update`], the update of the parameters whose
/// gradient `c` is. Cut by rows where the pool has more threads than the layer's two halves:
/// into one part per two threads, when each part gets at least [`SPARSE_HALF_TASK_MACS`]
/// multiply-adds, the parts balanced by their nonzeros, each part's update on the thread that
/// computed its rows. Every output is the same chain however the rows are cut, so the bits do
/// not depend on the number of threads.
///
/// Why not on two threads, as the dense halves are cut there for large batches: cutting each
/// half in two on the 2-core Zen 3 gained nothing on the wide model's first layer (six
/// alternating runs, paired epoch ratios 1.02 at batch 128 and 1.16 at 512; BENCHMARKS.md),
/// where each thread otherwise keeps its own half of the weights in its cache. On larger
/// machines the halves alone would leave all but two threads idle in this layer (not measured
/// here: only 2-core machines).
fn sparse_rows(a: Csr<'_>, b: &[f32], n: usize, c: &mut [f32], epilogue: Epilogue<'_>) -> Result<()> {
    if a.rows().checked_mul(n) != Some(c.len()) {
        return Err(Error::Shape(format!(
            "a sparse product of {} rows and {n} columns into {} values",
            a.rows(),
            c.len()
        )));
    }
    match &epilogue {
        Epilogue::None => {}
        Epilogue::Update { state, .. }
            if [state.params.len(), state.m.len(), state.v.len()] == [c.len(); 3] => {}
        _ => {
            return Err(Error::Shape(
                "a sparse product takes an update of its own rows or no epilogue".into(),
            ))
        }
    }
    let macs = a.nnz().saturating_mul(n);
    let per_half = (rayon::current_num_threads() / 2).max(1);
    let parts = tasks(macs, SPARSE_HALF_TASK_MACS, SPARSE_HALF_TASK_MACS_OUTSIDE).min(per_half);
    sparse_parts(parts, a, Rhs::new(b), n, c, epilogue)
}

/// [`sparse_rows`] in `parts` parts (lengths checked there).
fn sparse_parts(
    parts: usize,
    a: Csr<'_>,
    b: Rhs<'_>,
    n: usize,
    c: &mut [f32],
    epilogue: Epilogue<'_>,
) -> Result<()> {
    let rows = a.rows();
    if parts < 2 || rows < 2 {
        sparse::product(a, b, n, c)?;
        if let Epilogue::Update { rule, mut state } = epilogue {
            state.update(rule, 0..c.len(), c);
        }
        return Ok(());
    }
    // The first half of the parts takes about its share of the nonzeros, and at least a row.
    let first = parts / 2;
    let cut = a.rows_within(a.nnz() * first / parts).clamp(1, rows - 1);
    let (a0, a1) =
        a.split_rows(cut).ok_or_else(|| Error::Shape("a sparse product's rows cut past its end".into()))?;
    let (c0, c1) = c.split_at_mut(cut * n);
    let (e0, e1) = split_update(epilogue, cut * n);
    let (r0, r1) = rayon::join(
        || sparse_parts(first, a0, b, n, c0, e0),
        || sparse_parts(parts - first, a1, b, n, c1, e1),
    );
    r0?;
    r1
}

/// A weight gradient's epilogue for its first `at` elements and for the rest: an update of
/// each side's parameters, or none for either. (Only `None` and `Update` reach here: the
/// callers build no other.)
fn split_update(epilogue: Epilogue<'_>, at: usize) -> (Epilogue<'_>, Epilogue<'_>) {
    match epilogue {
        Epilogue::Update { rule, state } => {
            let (lo, hi) = state.split_at(at);
            (Epilogue::Update { rule, state: lo }, Epilogue::Update { rule, state: hi })
        }
        _ => (Epilogue::None, Epilogue::None),
    }
}

/// `dz_below = (dz W^T) * act'(z)`: `[rows, inp]`, from `wt` = `W^T` (copied before the update),
/// when there is a layer below; nothing otherwise.
fn input_gradient(
    below: Option<OutputGrad<'_>>,
    dz: &[f32],
    wt: &[f32],
    (rows, inp, out): (usize, usize, usize),
) -> Result<()> {
    if let Some(below) = below {
        let dz = StridedA { data: dz, rs: out, cs: 1 };
        let epilogue = Epilogue::ActGrad { act: below.activation, z: below.z };
        gemm(dz, wt, below.dz, (rows, inp, out), epilogue)?;
    }
    Ok(())
}

/// How the layer takes the gradient of its output `h = act(z)` from the layer above: into
/// `dz`, times `act'(z)`. `dz` and `z` are `[rows, outputs]`.
pub(crate) fn output_grad<'a>(activation: Activation, z: &'a [f32], dz: &'a mut [f32]) -> OutputGrad<'a> {
    OutputGrad { dz, activation, z }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm::State;
    use crate::cpu::sparse::Nonzeros;
    use crate::cpu::{bits, test_values};

    /// `x: [rows, cols]` with about four in five values +0 and row 1 all +0, as nonzeros by
    /// row and by column.
    fn nonzeros(rows: usize, cols: usize, seed: u64) -> Nonzeros {
        let mut x = test_values(rows * cols, seed);
        for (i, v) in x.iter_mut().enumerate() {
            if i % 5 != 0 || i / cols == 1 {
                *v = 0.0;
            }
        }
        let mut nz = Nonzeros::default();
        nz.begin(rows, cols).expect("begin");
        for row in x.chunks_exact(cols) {
            nz.push_values(row);
        }
        nz.lay_out_by_column();
        nz
    }

    /// A half's sparse product, and a weight gradient with its update, give the same bits cut
    /// into any number of parts as in one: on shapes whose rows are fewer than the parts or
    /// hold no nonzero, with a `B` that holds an infinity too (every output by the whole
    /// chain then), on a pool of more threads than the parts.
    #[test]
    fn a_sparse_half_gives_the_same_bits_in_any_number_of_parts() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(5).build().expect("a pool");
        // An elementwise update: each element's result depends on its own place's values only.
        let rule = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = 0.9 * *m + g;
                *v += g * g;
                *p -= 0.01 * *m / (v.sqrt() + 1e-7);
            }
        };
        for (rows, cols, n) in
            [(37, 50, 19), (3, 70, 64), (129, 392, 64), (600, 392, 64), (1, 9, 5), (2, 1, 70)]
        {
            let nz = nonzeros(rows, cols, rows as u64);
            let (by_row, by_column) = (nz.input().by_row, nz.input().by_column.expect("by column"));
            let mut w = test_values(cols * n, 3);
            let dz = test_values(rows * n, 4);
            for infinite in [false, true] {
                if infinite {
                    w[n / 2] = f32::INFINITY;
                }
                let state0 = [test_values(cols * n, 5), test_values(cols * n, 6), vec![0.25; cols * n]];
                let run = |parts: usize| {
                    let mut z = vec![f32::NAN; rows * n];
                    let mut dw = vec![f32::NAN; cols * n];
                    let [mut p, mut m, mut v] = state0.clone();
                    pool.install(|| {
                        sparse_parts(parts, by_row, Rhs::new(&w), n, &mut z, Epilogue::None)
                            .expect("forward");
                        let state = State { params: &mut p, m: &mut m, v: &mut v };
                        let update = Epilogue::Update { rule: &rule, state };
                        sparse_parts(parts, by_column, Rhs::new(&dz), n, &mut dw, update).expect("gradient");
                    });
                    [z, dw, p, m, v].map(|x| bits(&x))
                };
                let whole = run(1);
                for parts in [2, 3, 5, 8] {
                    assert_eq!(
                        run(parts),
                        whole,
                        "{rows}x{cols}, n {n}, {parts} parts, infinite B {infinite}"
                    );
                }
                // And as the layer asks for it: in one part, or in two (five threads, two per half)
                // for 600 rows (3 M multiply-adds).
                let mut z = vec![f32::NAN; rows * n];
                pool.install(|| sparse_rows(by_row, &w, n, &mut z, Epilogue::None)).expect("forward");
                assert_eq!(bits(&z), whole[0], "{rows}x{cols}, n {n}");
            }
        }
    }
}
