//! Bilinear doubling of both spatial axes (PyTorch's `interpolate(scale=2,
//! mode="bilinear", align_corners=False)`) as one kernel forward and one
//! backward, where the separable stencil took about a dozen launches each
//! way per axis (narrows, concatenations, a stack and the weighted sums):
//! the registration U-Net's six upsamplings were about a fifth of a RegGAN
//! step's launches.

use super::{covered, elementwise, empty_channels_last, HALF_OR_SINGLE};
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::{Shape, Tensor};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;

/// `[N, C, H, W]` to `[N, C, 2H, 2W]`, bilinear.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub trait ResizeOps: Backend {
    #[fusion(dtype = x, shape = doubled(x))]
    fn double_bilinear(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The adjoint: each input element sums the weighted gradients of the
    /// (up to 4 x 4) outputs that read it.
    #[fusion(dtype = grad, shape = halved(grad))]
    fn double_bilinear_backward(grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn doubled(x: &Shape) -> Shape {
    [x[0], x[1], 2 * x[2], 2 * x[3]].into()
}

fn halved(x: &Shape) -> Shape {
    [x[0], x[1], x[2] / 2, x[3] / 2].into()
}

/// `x` doubled in height and width, with autodiff when `x` tracks
/// gradients; `None` where the kernel does not apply (a CPU tensor, bf16,
/// an axis shorter than 2).
pub(crate) fn double_bilinear(x: &Tensor<4>) -> Option<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    if !covered(x, HALF_OR_SINGLE) || h < 2 || w < 2 {
        return None;
    }
    Some(Tensor::from_dispatch(
        <Dispatch as ResizeOps>::double_bilinear(x.clone().into_dispatch()),
    ))
}

impl ResizeOps for CubeBackend {
    fn double_bilinear(x: CubeTensor) -> CubeTensor {
        let shape = doubled(&x.shape());
        let out = empty_channels_last(&x, shape.clone());
        let client = x.client.clone();
        let (count, dim) = elementwise(&client, shape.num_elements());
        let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
        kernels::double_forward::launch(
            &client,
            count,
            dim,
            x.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            dtype,
        );
        out
    }

    fn double_bilinear_backward(grad: CubeTensor) -> CubeTensor {
        let shape = halved(&grad.shape());
        let dx = empty_channels_last(&grad, shape.clone());
        let client = grad.client.clone();
        let (count, dim) = elementwise(&client, shape.num_elements());
        let dtype = burn::backend::cubecl::dtype_to_storage_type(grad.dtype);
        kernels::double_backward::launch(
            &client,
            count,
            dim,
            grad.into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            dtype,
        );
        dx
    }
}

#[derive(Debug)]
struct DoubleBilinearBackward;

impl<B: Backend + ResizeOps> Backward<B, 1> for DoubleBilinearBackward {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::double_bilinear_backward(g)
        });
    }
}

impl<B: Backend + ResizeOps, C: CheckpointStrategy> ResizeOps for Autodiff<B, C> {
    fn double_bilinear(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let guard = x.node();
        let y = B::double_bilinear(x.into_primitive());
        match DoubleBilinearBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn double_bilinear_backward(_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("no second derivative of the bilinear doubling")
    }
}

mod kernels {
    use super::super::index::{offset, offset_out};
    use cubecl::prelude::*;

    /// One output of the doubling along an axis of `n` inputs, from its
    /// two source values: output 2i is 0.25 x[i-1] + 0.75 x[i], output
    /// 2i+1 is 0.75 x[i] + 0.25 x[i+1] (neighbours clamped at the edges),
    /// each product rounded before the sum as the CPU's stencil does.
    #[cube]
    fn tap(centre: f32, neighbour: f32) -> f32 {
        neighbour * f32::new(0.25) + centre * f32::new(0.75)
    }

    /// The neighbour index output `o` reads beside its centre `o / 2`.
    #[cube]
    fn neighbour(o: usize, n: usize) -> usize {
        let i = o / 2;
        let before = select(i > 0, i - 1, 0);
        let after = select(i + 1 < n, i + 1, n - 1);
        select(o % 2 == 1, after, before)
    }

    /// The input `row` of plane `plane` doubled along the width at output
    /// column `c` (the CPU's first pass).
    #[cube]
    fn across<F: Float>(x: &Tensor<F>, plane: usize, row: usize, c: usize) -> f32 {
        let w = x.shape(3);
        let centre = f32::cast_from(x[offset(x, plane, row * w + c / 2)]);
        let side = f32::cast_from(x[offset(x, plane, row * w + neighbour(c, w))]);
        tap(centre, side)
    }

    #[cube(launch)]
    pub fn double_forward<F: Float>(
        x: &Tensor<F>,
        out: &mut Tensor<F>,
        #[define(F)] _dtype: ElemType,
    ) {
        let at = ABSOLUTE_POS;
        if at >= out.len() {
            terminate!();
        }
        let (ho, wo) = (out.shape(2), out.shape(3));
        let plane = at / (ho * wo);
        let rest = at % (ho * wo);
        let (r, c) = (rest / wo, rest % wo);
        let centre = across(x, plane, r / 2, c);
        let side = across(x, plane, neighbour(r, x.shape(2)), c);
        let o = offset_out(out, plane, rest);
        out[o] = F::cast_from(tap(centre, side));
    }

    /// How much output `o` of an axis of `n` inputs reads input `k`.
    #[cube]
    fn weight(o: usize, k: usize, n: usize) -> f32 {
        let centre = select(o / 2 == k, f32::new(0.75), f32::new(0.0));
        let side = select(neighbour(o, n) == k, f32::new(0.25), f32::new(0.0));
        centre + side
    }

    #[cube(launch)]
    pub fn double_backward<F: Float>(
        g: &Tensor<F>,
        dx: &mut Tensor<F>,
        #[define(F)] _dtype: ElemType,
    ) {
        let at = ABSOLUTE_POS;
        if at >= dx.len() {
            terminate!();
        }
        let (h, w) = (dx.shape(2), dx.shape(3));
        let plane = at / (h * w);
        let rest = at % (h * w);
        let (k, l) = (rest / w, rest % w);
        let wo = 2 * w;
        let mut s = f32::new(0.0);
        // The outputs 2k-1 ..= 2k+2 along each axis are all that read it.
        for dr in 0..4usize {
            let r = 2 * k + dr;
            if r >= 1 && r <= 2 * h {
                let wr = weight(r - 1, k, h);
                if wr != f32::new(0.0) {
                    let mut row = f32::new(0.0);
                    for dc in 0..4usize {
                        let c = 2 * l + dc;
                        if c >= 1 && c <= wo {
                            let wc = weight(c - 1, l, w);
                            row += wc * f32::cast_from(g[offset(g, plane, (r - 1) * wo + c - 1)]);
                        }
                    }
                    s += wr * row;
                }
            }
        }
        let o = offset_out(dx, plane, rest);
        dx[o] = F::cast_from(s);
    }
}
