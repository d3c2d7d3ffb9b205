//! [`Layer::Dense`](crate::spec::Layer::Dense) on the GPU: the forward product with its bias
//! and activation fused into the epilogue, and the backward (`dW = x^T dz` with `db` = column
//! sums of `dz` in the same launch, `dx = dz W^T` with the layer below's activation derivative
//! fused; for a narrow layer all three in one launch). The CPU twin is `cpu/layers/dense.rs`.

use super::super::Replica;
use super::OutputGrad;
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    dense_backward_fits, DenseBackwardCall, Dispatch, MatmulCall, OperandTexture, Packed,
};
use crate::ops::MatmulForm;
use crate::spec::{Activation, LayerSlots};

/// The textures a dense layer's backward reads and writes (planned in `operands.rs`).
#[derive(Debug, Default, Clone, Copy)]
pub(in crate::gpu::replica) struct BackwardTextures<'a> {
    /// Operands of `dW = a^T dz` packed ahead: the layer's input, `dz`.
    pub dw: Packed<'a>,
    /// Operands of `dX = dz W^T` packed ahead: `dz`, `W`.
    pub dx: Packed<'a>,
    /// Where the one-launch backward also writes the input gradient (for the layer
    /// below's texture products: its weight gradient, and its input gradient's).
    pub dx_out: Option<&'a OperandTexture>,
}

impl Replica {
    /// Layer `l`'s tensors (`l` counts every layer; a dense layer has them).
    fn dense_slots(&self, l: usize) -> Result<&LayerSlots> {
        self.layout.of_layer(l).ok_or_else(|| Error::Shape(format!("layer {l} has no tensors in the layout")))
    }

    /// Layer `l`'s forward product over `rows` rows: `z_l = a_{l-1} W_l + b_l`,
    /// `h_l = act(z_l)` (z kept for backward when the activation needs it).
    pub(in crate::gpu::replica) fn dense_forward_call(
        &self,
        l: usize,
        activation: Activation,
        rows: usize,
    ) -> Result<MatmulCall<'_>> {
        let (w, slots) = (&self.work, self.dense_slots(l)?);
        let last = self.spec.layers.len() - 1;
        Ok(MatmulCall {
            form: MatmulForm::AB,
            m: rows,
            n: slots.outputs,
            k: slots.inputs,
            a: (if l == 0 { &w.x } else { &w.h[l - 1] }, 0),
            b: (&self.params, slots.weight),
            c: (&w.h[l], 0),
            bias: Some(slots.bias),
            act: activation,
            z: (l < last && activation != Activation::Identity).then_some((&w.z[l], 0)),
            act_backward: false,
        })
    }

    /// Layer `l`'s weight gradient over `rows` rows: `dW_l = a_{l-1}^T dz_l`.
    pub(in crate::gpu::replica) fn dense_weight_grad_call(
        &self,
        l: usize,
        rows: usize,
    ) -> Result<MatmulCall<'_>> {
        let (w, slots) = (&self.work, self.dense_slots(l)?);
        let input = if l == 0 { &w.x } else { &w.h[l - 1] };
        Ok(MatmulCall {
            c: (&self.grads, slots.weight),
            ..MatmulCall::plain(
                MatmulForm::AtB,
                slots.inputs,
                slots.outputs,
                rows,
                input,
                &w.dz[l],
                &self.grads,
            )
        })
    }

    /// Whether layer `l`'s backward over `rows` rows, given a layer below to hand its input
    /// gradient to, is the one launch of `dense_backward.wgsl`: fused, a narrow layer (at most
    /// 32 outputs: `dense_backward_fits`) whose input is a buffer (`input_texture`: it reads
    /// its input from a texture instead), on a device that runs the kernel.
    pub(in crate::gpu::replica) fn backward_in_one_launch(
        &self,
        l: usize,
        rows: usize,
        input_texture: bool,
    ) -> bool {
        self.dense_slots(l).is_ok_and(|slots| {
            self.fuse
                && !input_texture
                && self.kernels.dense_backward.supported()
                && dense_backward_fits(rows, slots.outputs, slots.inputs)
        })
    }

    /// Records layer `l`'s backward from `dz_l`: `dW_l`, `db_l`, and when `below` is given the
    /// input gradient delivered to the layer below as it asks. With a layer below, a layer
    /// [`Replica::backward_in_one_launch`] takes records all three in one launch (which also
    /// writes the input gradient into `textures.dx_out` when given); otherwise dW with db (one
    /// launch fused, two not), then dX, each reading the operands `textures` has packed ahead.
    pub(in crate::gpu::replica) fn dense_backward(
        &self,
        l: usize,
        rows: usize,
        below: Option<OutputGrad<'_>>,
        textures: BackwardTextures<'_>,
    ) -> Result<Vec<Dispatch>> {
        let BackwardTextures { dw: packed, dx: dx_packed, dx_out: dx_texture } = textures;
        let (g, k, w, slots) = (&self.gpu, &self.kernels, &self.work, self.dense_slots(l)?);
        // A narrow layer reading a buffer: dW, db and dX in one launch (dense_backward.wgsl),
        // with the bits of the launches below. Without a layer below to hand dX to, the
        // product with its column sums is already one launch, and stays.
        if let Some(below) =
            below.as_ref().filter(|_| self.backward_in_one_launch(l, rows, packed.a.is_some()))
        {
            if packed.b.is_some() || dx_packed.a.is_some() || dx_packed.b.is_some() {
                return Err(Error::Config(format!(
                    "layer {l}'s backward is one launch reading dZ and W from their buffers: nothing \
                     should have packed either into a texture for it"
                )));
            }
            let call = DenseBackwardCall {
                rows,
                n: slots.outputs,
                k: slots.inputs,
                h: (if l == 0 { &w.x } else { &w.h[l - 1] }, 0),
                dz: (&w.dz[l], 0),
                w: (&self.params, slots.weight),
                dw: (&self.grads, slots.weight),
                db: slots.bias,
                act: below.activation,
                z: (below.z, 0),
                dx: (below.dz, 0),
                dx_texture,
            };
            return Ok(vec![k.dense_backward.record(g, &call)?]);
        }
        if dx_texture.is_some() {
            return Err(Error::Config(format!(
                "layer {l}'s backward is not one launch: it cannot write its input gradient into a texture"
            )));
        }
        let mut out = Vec::with_capacity(3);
        // dW_l = a_{l-1}^T dz_l: [inputs, outputs], and in the same launch db_l = column
        // sums of dz_l: [outputs] (the bits of `reduce.column_sums`)
        let dw = self.dense_weight_grad_call(l, rows)?;
        if self.fuse {
            out.push(k.matmul_with_sums(g, &dw, packed, Some(slots.bias))?);
        } else {
            out.push(k.matmul_with(g, &dw, packed)?);
            out.push(k.reduce.column_sums(
                g,
                rows,
                slots.outputs,
                (&w.dz[l], 0),
                (&self.grads, slots.bias),
            )?);
        }
        if let Some(below) = below {
            let call = self.dense_input_grad_call(l, rows, &below)?;
            out.push(k.matmul_with(g, &call, dx_packed)?);
        }
        Ok(out)
    }

    /// Layer `l`'s input gradient over `rows` rows, delivered to the layer below as it asks:
    /// `dz_{l-1} = (dz_l W_l^T) * act'_{l-1}(z_{l-1})`: [rows, inputs].
    pub(in crate::gpu::replica) fn dense_input_grad_call<'a>(
        &'a self,
        l: usize,
        rows: usize,
        below: &OutputGrad<'a>,
    ) -> Result<MatmulCall<'a>> {
        let slots = self.dense_slots(l)?;
        Ok(MatmulCall {
            form: MatmulForm::ABt,
            m: rows,
            n: slots.inputs,
            k: slots.outputs,
            a: (&self.work.dz[l], 0),
            b: (&self.params, slots.weight),
            c: (below.dz, 0),
            bias: None,
            act: below.activation,
            z: Some((below.z, 0)),
            act_backward: true,
        })
    }

    /// How dense layer `l` takes the gradient of its output: into `dz_l`, times its
    /// activation's derivative at `z_l` (at `h_l` for the identity, which keeps no `z`).
    pub(in crate::gpu::replica) fn dense_output_grad(
        &self,
        l: usize,
        activation: Activation,
    ) -> OutputGrad<'_> {
        let w = &self.work;
        let z = if activation == Activation::Identity { &w.h[l] } else { &w.z[l] };
        OutputGrad { dz: &w.dz[l], activation, z }
    }
}
