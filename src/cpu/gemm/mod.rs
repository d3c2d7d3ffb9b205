//! The CPU's matrix product with the dense layer's epilogues fused, as the GPU's matmul kernels
//! do: `C = A B`, then (while the block is still in registers and L1) `+ bias` and the
//! activation, or `* act'(z)` for an input gradient; or, for a weight gradient, the
//! optimizer's update of those weights once a thread's rows are done.
//!
//! Shapes: `A(i, p) = a[i * a_rs + p * a_cs]` for `i < m, p < k` (any strides, so that `A`
//! and `A^T` are the same call), `B: [k, n]` row-major, `C: [m, n]` row-major. The weights are
//! already `[k, n]` row-major in the flat buffer, so the forward and the weight gradient read
//! both operands where they lie (the input gradient's `W^T` is transposed once per step into a
//! workspace buffer by the caller); only a `B` wider than one panel and than 64 columns is
//! copied, a panel's rows at a time, into a thread's own block (`kernel.rs`).
//!
//! The micro-kernel keeps an `MR x (NV * WIDTH)` block of `C` in registers (6 x 64 with
//! AVX-512) and, for each `p`, loads `NV` vectors of `B`'s row `p` and multiplies them by `MR`
//! broadcast elements of `A`'s column `p`. A long `k` is cut into passes of at most 128 rows of
//! `B`, which stay in L1 while every row block reads them; each pass continues from the sums
//! the last one stored. Every output is therefore
//! `fma(A(i, k-1), B(k-1, j), ... fma(A(i, 0), B(0, j), 0))`, one accumulator summed in order
//! of `p`, whatever the block shape, the passes, the vector width or the rows a thread was
//! given: how the product is cut up (over threads, blocks or passes) never changes a bit, and
//! AVX2 gives the bits of AVX-512 (tested against the chain itself). CPUs with neither run
//! `matrixmultiply`'s sgemm and the epilogue as separate loops (other bits, same tolerances).
//!
//! Threads: `C`'s rows are cut into one block per rayon thread when each gets at least
//! [`MIN_TASK_MACS`] multiply-adds (on a rayon thread; see `threads.rs`); smaller products stay
//! on the calling thread.

use crate::error::{Error, Result};
use crate::spec::Activation;

use super::activation::{forward_span, scale_by_derivative};
use super::simd::Isa;
use super::threads::tasks;

mod kernel;
#[cfg(test)]
mod tests;

/// Multiply-adds each thread must get before a product is cut into row blocks, on one of
/// rayon's threads: about 5 us of work, several times the cost of the hand-off there (see
/// `threads.rs`). The MNIST model's first layer is split by its inputs instead
/// (`cpu/layers/dense.rs`); its second (at most 128 x 64 x 10) is not split.
const MIN_TASK_MACS: usize = 1 << 19;
/// The same from a thread outside rayon's pool, where a split costs tens of microseconds:
/// only large products (a 1024^3 product ran twice as fast on two threads).
const MIN_TASK_MACS_OUTSIDE: usize = 1 << 25;

/// `A(i, p) = data[i * rs + p * cs]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StridedA<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// What happens to each block of `C = A B` before it is stored.
pub(super) enum Epilogue<'a> {
    /// `C` is the product.
    None,
    /// `C = A B + bias` (`bias: [n]`, added after the sum), and when `h` is given,
    /// `h = act(C)` (`h: [m, n]`): a dense layer's forward.
    Bias { bias: &'a [f32], act: Activation, h: Option<&'a mut [f32]> },
    /// `C = (A B) * act'(z)` (`z: [m, n]`): the input gradient of a dense layer, delivered as
    /// the pre-activation gradient of the layer below.
    ActGrad { act: Activation, z: &'a [f32] },
    /// `C` is the gradient of parameters laid out as `C` is (a dense layer's weights, `[m, n]`):
    /// once a thread's rows of `C` are stored, `rule` updates those parameters and their
    /// moments from them, on the same thread. The optimizer step fused into the weight
    /// gradient's product.
    Update { rule: UpdateRule<'a>, state: State<'a> },
}

/// An optimizer's update of `(params, grads, m, v)`, four slices of one length, element by
/// element (Adam or SGD with one step's scalars): where it is cut changes no bit.
pub(super) type UpdateRule<'a> = &'a (dyn Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync);

/// Parameters and their optimizer moments, each `[m, n]` like the `C` that is their gradient.
#[derive(Debug)]
pub(super) struct State<'a> {
    pub params: &'a mut [f32],
    pub m: &'a mut [f32],
    pub v: &'a mut [f32],
}

impl<'a> State<'a> {
    /// Elements `range` of each slice.
    pub(super) fn slice(&mut self, range: std::ops::Range<usize>) -> State<'_> {
        State {
            params: &mut self.params[range.clone()],
            m: &mut self.m[range.clone()],
            v: &mut self.v[range],
        }
    }

    /// The first `at` elements of each slice, and the rest.
    pub(super) fn split_at(self, at: usize) -> (State<'a>, State<'a>) {
        let (p0, p1) = self.params.split_at_mut(at);
        let (m0, m1) = self.m.split_at_mut(at);
        let (v0, v1) = self.v.split_at_mut(at);
        (State { params: p0, m: m0, v: v0 }, State { params: p1, m: m1, v: v1 })
    }

    /// Applies `rule` to elements `span`, with `grads` their gradients.
    pub(super) fn update(&mut self, rule: UpdateRule<'_>, span: std::ops::Range<usize>, grads: &[f32]) {
        rule(&mut self.params[span.clone()], grads, &mut self.m[span.clone()], &mut self.v[span]);
    }
}

/// `C = A B` with `epilogue`, `c: [m, n]` overwritten (never read). Wrong lengths and zero
/// sizes are [`Error::Shape`]; nothing is written then.
pub(super) fn gemm(
    a: StridedA<'_>,
    b: &[f32],
    c: &mut [f32],
    mnk: (usize, usize, usize),
    epilogue: Epilogue<'_>,
) -> Result<()> {
    gemm_on(Isa::detect(), MIN_TASK_MACS, a, b, c, mnk, epilogue)
}

/// [`gemm`] for a part of a layer's work that already has a thread of its own (see
/// `cpu/layers/dense.rs`): split further only when each thread would get at least
/// `min_task_macs` multiply-adds.
pub(super) fn gemm_part(
    min_task_macs: usize,
    a: StridedA<'_>,
    b: &[f32],
    c: &mut [f32],
    mnk: (usize, usize, usize),
    epilogue: Epilogue<'_>,
) -> Result<()> {
    gemm_on(Isa::detect(), min_task_macs, a, b, c, mnk, epilogue)
}

/// [`gemm`] with the instruction set chosen by the caller (the tests run each one this CPU
/// has; `isa` must be supported by this CPU) and the least work per thread of a split.
fn gemm_on(
    isa: Isa,
    min_task_macs: usize,
    a: StridedA<'_>,
    b: &[f32],
    c: &mut [f32],
    (m, n, k): (usize, usize, usize),
    epilogue: Epilogue<'_>,
) -> Result<()> {
    check(a, b, c, (m, n, k), &epilogue)?;
    let macs = m.saturating_mul(n).saturating_mul(k);
    let tasks = tasks(macs, min_task_macs, MIN_TASK_MACS_OUTSIDE.max(min_task_macs)).min(m);
    let (mut job, mut out) =
        (Job { isa, a, b, n, k, bias: None, act: None, z: None, rule: None }, Out::of(c));
    match epilogue {
        Epilogue::None => {}
        Epilogue::Bias { bias, act, h } => {
            (job.bias, job.act) = (Some(bias), h.as_ref().map(|_| act));
            out.h = h;
        }
        Epilogue::ActGrad { act, z } => (job.act, job.z) = (Some(act), Some(z)),
        Epilogue::Update { rule, state } => {
            job.rule = Some(rule);
            out.state = Some(state);
        }
    }
    // Parts of whole 6-row blocks (the 64-column kernel's), so that only the last is partial.
    split_rows(&job, 0, m, m.div_ceil(tasks).next_multiple_of(6), out);
    Ok(())
}

/// Everything a block of rows needs besides its own output slices.
struct Job<'a> {
    isa: Isa,
    a: StridedA<'a>,
    b: &'a [f32],
    n: usize,
    k: usize,
    bias: Option<&'a [f32]>,
    /// The activation of the forward (`h` given) or of the act-grad epilogue (`z` given).
    act: Option<Activation>,
    z: Option<&'a [f32]>,
    /// The update epilogue's rule (its state is cut with `C`, in [`Out`]).
    rule: Option<UpdateRule<'a>>,
}

/// What is written for some rows of `C`: those rows of `C`, and of `h` or of the updated
/// parameters and moments when the epilogue has them.
struct Out<'a> {
    c: &'a mut [f32],
    h: Option<&'a mut [f32]>,
    state: Option<State<'a>>,
}

impl<'a> Out<'a> {
    fn of(c: &'a mut [f32]) -> Self {
        Out { c, h: None, state: None }
    }

    /// The first `at` elements of each, and the rest.
    fn split_at(self, at: usize) -> (Out<'a>, Out<'a>) {
        let (c0, c1) = self.c.split_at_mut(at);
        let (h0, h1) = match self.h.map(|h| h.split_at_mut(at)) {
            Some((h0, h1)) => (Some(h0), Some(h1)),
            None => (None, None),
        };
        let (s0, s1) = match self.state.map(|s| s.split_at(at)) {
            Some((s0, s1)) => (Some(s0), Some(s1)),
            None => (None, None),
        };
        (Out { c: c0, h: h0, state: s0 }, Out { c: c1, h: h1, state: s1 })
    }
}

/// Rows `i0..i1` of `C` (and of what the epilogue writes), cut in halves on rayon until a
/// part has at most `chunk` rows; `out` holds exactly those rows.
fn split_rows(job: &Job<'_>, i0: usize, i1: usize, chunk: usize, out: Out<'_>) {
    let rows = i1 - i0;
    if rows <= chunk {
        run_rows(job, i0, i1, out);
        return;
    }
    // Cut at a multiple of `chunk` so that the parts are the chunks the count asked for.
    let mid = i0 + rows.div_ceil(chunk) / 2 * chunk;
    let (lo, hi) = out.split_at((mid - i0) * job.n);
    rayon::join(|| split_rows(job, i0, mid, chunk, lo), || split_rows(job, mid, i1, chunk, hi));
}

/// Rows `i0..i1` on this thread: the product with the bias, then each finished block's
/// scalar epilogue (activation or its derivative) while it is in L1, or, for an update, the
/// update of all these rows.
fn run_rows(job: &Job<'_>, i0: usize, i1: usize, out: Out<'_>) {
    let n = job.n;
    let Out { c, mut h, state } = out;
    // The activation pass of rows r0..r1 (relative to i0) and columns j0..j1: the loops of
    // `activation_forward_into` and `activation_backward_into`, so the same bits.
    let mut finish = |c: &mut [f32], r0: usize, r1: usize, j0: usize, j1: usize| {
        for r in r0..r1 {
            let span = r * n + j0..r * n + j1;
            match (job.act, h.as_deref_mut(), job.z) {
                (Some(act), Some(h), _) => forward_span(&c[span.clone()], act, &mut h[span]),
                (Some(act), None, Some(z)) => {
                    scale_by_derivative(&mut c[span], &z[(i0 + r) * n + j0..(i0 + r) * n + j1], act)
                }
                _ => {}
            }
        }
    };
    match job.isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `job.isa` is supported by this CPU (`detect` found it, or a test checked);
        // `gemm_on` checked every length (see `check`), which is what the blocks rely on.
        Isa::Avx512 => unsafe { kernel::rows_avx512(job, i0, i1, c, &mut finish) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, with AVX2 and FMA.
        Isa::Avx2Fma => unsafe { kernel::rows_avx2(job, i0, i1, c, &mut finish) },
        _ => kernel::rows_portable(job, i0, i1, c, &mut finish),
    }
    // The update of these rows, in one pass once they are all done: one long loop ran as fast
    // as the product and a separate update (a 392 x 64 x 32 weight gradient with Adam, best of
    // 3000 on the Xeon: 23.0 us) and one per block slower (25.2 us); the rows are still in this
    // core's cache.
    if let (Some(rule), Some(mut state)) = (job.rule, state) {
        state.update(rule, 0..c.len(), c);
    }
}

/// The lengths every pointer of the kernel relies on.
fn check(
    a: StridedA<'_>,
    b: &[f32],
    c: &[f32],
    (m, n, k): (usize, usize, usize),
    e: &Epilogue<'_>,
) -> Result<()> {
    let shape = |what: &str| Error::Shape(format!("product of [{m}, {k}] x [{k}, {n}]: {what}"));
    if m == 0 || n == 0 || k == 0 {
        return Err(shape("a zero size"));
    }
    let mn = m.checked_mul(n).ok_or_else(|| shape("C overflows usize"))?;
    let kn = k.checked_mul(n).ok_or_else(|| shape("B overflows usize"))?;
    let a_last = (m - 1)
        .checked_mul(a.rs)
        .and_then(|x| (k - 1).checked_mul(a.cs).and_then(|y| x.checked_add(y)))
        .ok_or_else(|| shape("A's strides overflow usize"))?;
    if a_last >= a.data.len() {
        return Err(shape(&format!("A holds {} values, its last is at {a_last}", a.data.len())));
    }
    if b.len() != kn {
        return Err(shape(&format!("B holds {} values, expected {kn}", b.len())));
    }
    if c.len() != mn {
        return Err(shape(&format!("C holds {} values, expected {mn}", c.len())));
    }
    let (bias, side) = match e {
        Epilogue::None => (None, None),
        Epilogue::Bias { bias, h, .. } => (Some(bias.len()), h.as_ref().map(|h| h.len())),
        Epilogue::ActGrad { z, .. } => (None, Some(z.len())),
        Epilogue::Update { state, .. } => {
            for (what, len) in
                [("parameters", state.params.len()), ("m", state.m.len()), ("v", state.v.len())]
            {
                if len != mn {
                    return Err(shape(&format!("the updated {what} hold {len} values, expected {mn}")));
                }
            }
            (None, None)
        }
    };
    if bias.is_some_and(|len| len != n) {
        return Err(shape(&format!("the bias holds {} values, expected {n}", bias.unwrap_or(0))));
    }
    if side.is_some_and(|len| len != mn) {
        return Err(shape(&format!(
            "the epilogue's tensor holds {} values, expected {mn}",
            side.unwrap_or(0)
        )));
    }
    Ok(())
}

/// `dst = src^T`: `src: [rows, cols]`, `dst: [cols, rows]`, both row-major. In 8 x 8 tiles so
/// that both sides touch few cache lines at a time.
pub(super) fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) -> Result<()> {
    if src.len() != rows * cols || dst.len() != rows * cols {
        return Err(Error::Shape(format!(
            "transpose of [{rows}, {cols}] from {} into {} values",
            src.len(),
            dst.len()
        )));
    }
    const T: usize = 8;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
    Ok(())
}
