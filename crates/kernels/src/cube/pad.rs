//! Reflect padding as one kernel forward and one backward, where Burn's
//! GPU path takes two index selects forward and two zero-fills and two
//! select-assigns back.

use super::{covered, elementwise, empty_channels_last, HALF_OR_SINGLE};
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::{Shape, Tensor};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;

/// Reflect padding of the last two dimensions by `pad` on every side.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub trait PadOps: Backend {
    #[fusion(dtype = x, shape = padded(x, pad))]
    fn reflect_pad(x: FloatTensor<Self>, pad: usize) -> FloatTensor<Self>;

    /// The adjoint: each input element sums the gradients of every padded
    /// position that reads it (itself and up to two reflections per axis).
    #[fusion(dtype = grad, shape = unpadded(grad, pad))]
    fn reflect_pad_backward(grad: FloatTensor<Self>, pad: usize) -> FloatTensor<Self>;
}

/// `[N, C, H, W]` grown to `[N, C, H + 2p, W + 2p]`.
fn padded(x: &Shape, pad: &usize) -> Shape {
    [x[0], x[1], x[2] + 2 * pad, x[3] + 2 * pad].into()
}

fn unpadded(x: &Shape, pad: &usize) -> Shape {
    [x[0], x[1], x[2] - 2 * pad, x[3] - 2 * pad].into()
}

/// `x` reflect-padded by `pad`, with autodiff when `x` tracks gradients;
/// `None` where the kernel does not apply (a CPU tensor, bf16).
pub(crate) fn reflect_pad(x: &Tensor<4>, pad: usize) -> Option<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    if !covered(x, HALF_OR_SINGLE) {
        return None;
    }
    assert!(
        pad < h && pad < w,
        "reflect padding {pad} needs more than {pad} pixels, got {h}x{w}"
    );
    Some(Tensor::from_dispatch(<Dispatch as PadOps>::reflect_pad(
        x.clone().into_dispatch(),
        pad,
    )))
}

impl PadOps for CubeBackend {
    fn reflect_pad(x: CubeTensor, pad: usize) -> CubeTensor {
        let shape = padded(&x.shape(), &pad);
        let out = empty_channels_last(&x, shape.clone());
        let client = x.client.clone();
        let (count, dim) = elementwise(&client, shape.num_elements());
        let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
        kernels::reflect_pad_forward::launch(
            &client,
            count,
            dim,
            x.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            pad as u32,
            dtype,
        );
        out
    }

    fn reflect_pad_backward(grad: CubeTensor, pad: usize) -> CubeTensor {
        let shape = unpadded(&grad.shape(), &pad);
        let dx = empty_channels_last(&grad, shape.clone());
        let client = grad.client.clone();
        let (count, dim) = elementwise(&client, shape.num_elements());
        let dtype = burn::backend::cubecl::dtype_to_storage_type(grad.dtype);
        kernels::reflect_pad_backward::launch(
            &client,
            count,
            dim,
            grad.into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            pad as u32,
            dtype,
        );
        dx
    }
}

#[derive(Debug)]
struct ReflectPadBackward;

impl<B: Backend + PadOps> Backward<B, 1> for ReflectPadBackward {
    type State = usize;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let pad = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::reflect_pad_backward(g, pad)
        });
    }
}

impl<B: Backend + PadOps, C: CheckpointStrategy> PadOps for Autodiff<B, C> {
    fn reflect_pad(x: FloatTensor<Self>, pad: usize) -> FloatTensor<Self> {
        let guard = x.node();
        let y = B::reflect_pad(x.into_primitive(), pad);
        match ReflectPadBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(pad, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn reflect_pad_backward(_grad: FloatTensor<Self>, _pad: usize) -> FloatTensor<Self> {
        unreachable!("no second derivative of reflect padding")
    }
}

mod kernels {
    use super::super::index::{offset, offset_out};
    use cubecl::prelude::*;

    /// Source index along an axis of `len` for padded position `i`: -1
    /// reads 1, len reads len - 2 (the edge is not repeated).
    #[cube]
    fn reflect(i: usize, pad: usize, len: usize) -> usize {
        let a = select(i < pad, pad - i, i - pad);
        select(a >= len, 2 * (len - 1) - a, a)
    }

    #[cube(launch)]
    pub fn reflect_pad_forward<F: Float>(
        x: &Tensor<F>,
        out: &mut Tensor<F>,
        pad: u32,
        #[define(F)] _dtype: ElemType,
    ) {
        let at = ABSOLUTE_POS;
        if at >= out.len() {
            terminate!();
        }
        let p = pad as usize;
        let (hp, wp) = (out.shape(2), out.shape(3));
        let (h, w) = (x.shape(2), x.shape(3));
        let plane = at / (hp * wp);
        let rest = at % (hp * wp);
        let src = reflect(rest / wp, p, h) * w + reflect(rest % wp, p, w);
        let o = offset_out(out, plane, rest);
        out[o] = x[offset(x, plane, src)];
    }

    /// The gradient of padded row `r` summed over the padded columns that
    /// read column `col` of the input.
    #[cube]
    fn row_sum<F: Float>(
        g: &Tensor<F>,
        plane: usize,
        r: usize,
        col: usize,
        p: usize,
        w: usize,
    ) -> f32 {
        let wp = w + 2 * p;
        let mut s = f32::cast_from(g[offset(g, plane, r * wp + col + p)]);
        if col > 0 && col <= p {
            s += f32::cast_from(g[offset(g, plane, r * wp + p - col)]);
        }
        if col + 1 + p >= w && col + 1 < w {
            s += f32::cast_from(g[offset(g, plane, r * wp + p + 2 * (w - 1) - col)]);
        }
        s
    }

    #[cube(launch)]
    pub fn reflect_pad_backward<F: Float>(
        g: &Tensor<F>,
        dx: &mut Tensor<F>,
        pad: u32,
        #[define(F)] _dtype: ElemType,
    ) {
        let at = ABSOLUTE_POS;
        if at >= dx.len() {
            terminate!();
        }
        let p = pad as usize;
        let (h, w) = (dx.shape(2), dx.shape(3));
        let plane = at / (h * w);
        let row = (at % (h * w)) / w;
        let col = at % w;
        let mut s = row_sum(g, plane, row + p, col, p, w);
        if row > 0 && row <= p {
            s += row_sum(g, plane, p - row, col, p, w);
        }
        if row + 1 + p >= h && row + 1 < h {
            s += row_sum(g, plane, p + 2 * (h - 1) - row, col, p, w);
        }
        let o = offset_out(dx, plane, at % (h * w));
        dx[o] = F::cast_from(s);
    }
}
