//! Each layer kind's forward and backward on the CPU: the twins of the GPU recordings in
//! `gpu/replica/layers/`, op for op, so both executors compute the same numbers. The passes
//! in `cpu/pass.rs` drive them from the network's layer list.

use crate::spec::Activation;

use super::gemm::{State, UpdateRule};
use super::sparse::SparseInput;

pub(super) mod dense;
pub(super) mod dropout;

/// How a layer takes the gradient of its output from the layer above, which computes it:
/// into `dz`, already multiplied by `act'(z)` (the GPU's `OutputGrad`, fused the same way).
#[derive(Debug)]
pub(super) struct OutputGrad<'a> {
    /// The layer's pre-activation gradient, `[rows, outputs]`, written by the layer above.
    pub dz: &'a mut [f32],
    pub activation: Activation,
    /// The layer's pre-activation, `[rows, outputs]`.
    pub z: &'a [f32],
}

/// The parameters a backward pass reads: as they are, or with the step's optimizer update
/// fused into the pass, each layer's parameters updated by `rule` as soon as their gradients
/// are done (`state` covers the whole flat buffer; see `dense::backward`).
pub(super) enum Params<'a> {
    Read(&'a [f32]),
    Update { state: State<'a>, rule: UpdateRule<'a> },
}

impl Params<'_> {
    /// The parameters' current values.
    pub(super) fn values(&self) -> &[f32] {
        match self {
            Params::Read(p) => p,
            Params::Update { state, .. } => state.params,
        }
    }
}

/// A layer's input rows, `[rows, inputs]`: in one block, or, for a layer that splits its
/// inputs at `h` (see [`dense::input_split`]), as its two column blocks `[rows, h]` and
/// `[rows, inputs - h]`, which the CPU executor gathers on the two threads that use them, or
/// as those two blocks' nonzeros (`cpu/sparse.rs`: mostly-zero data).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LayerInput<'a> {
    Whole(&'a [f32]),
    Halves(&'a [f32], &'a [f32]),
    Sparse(SparseInput<'a>, SparseInput<'a>),
}

/// Some columns of a layer's input rows: row `r` starts at `data[r * ld]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Columns<'a> {
    pub data: &'a [f32],
    pub ld: usize,
}

impl<'a> LayerInput<'a> {
    /// Columns `0..h` and `h..inputs`: the two row-major blocks, or the two column ranges of
    /// the whole rows; `None` for nonzeros.
    pub(super) fn halves(self, inputs: usize, h: usize) -> Option<(Columns<'a>, Columns<'a>)> {
        match self {
            LayerInput::Whole(x) => Some((
                Columns { data: x, ld: inputs },
                Columns { data: x.get(h..).unwrap_or(&[]), ld: inputs },
            )),
            LayerInput::Halves(lo, hi) => {
                Some((Columns { data: lo, ld: h }, Columns { data: hi, ld: inputs - h }))
            }
            LayerInput::Sparse(..) => None,
        }
    }
}
