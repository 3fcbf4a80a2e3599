//! (Leaky) ReLU as one kernel forward and one backward, where Burn's takes
//! a comparison, a product and a masked fill each way.

use super::{covered, elementwise, empty_channels_last, HALF_OR_SINGLE};
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::CubeDim;

/// x where x > 0, else `slope` * x (0: ReLU), on `[N, C, H, W]`.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub trait ActOps: Backend {
    #[fusion(dtype = x, shape = x)]
    fn act_leaky_relu(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self>;

    /// dL/dx from the forward's output y: y has x's sign (and is 0 where x
    /// is) for any slope >= 0, so y alone gives the derivative at each
    /// element (at exactly 0 as Burn's ops have it: 0 for ReLU, 1 for a
    /// leaky ReLU).
    #[fusion(dtype = y, shape = y)]
    fn act_leaky_relu_backward(
        y: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self>;
}

pub(crate) fn leaky_relu(x: &Tensor<4>, slope: f32) -> Option<Tensor<4>> {
    if !covered(x, HALF_OR_SINGLE) || slope < 0.0 {
        return None;
    }
    Some(Tensor::from_dispatch(<Dispatch as ActOps>::act_leaky_relu(
        x.clone().into_dispatch(),
        slope,
    )))
}

/// One thread per element of `out` (channels-last, as a convolution's
/// output is, so that the next convolution reads it without a copy).
fn launch(
    out_like: &CubeTensor,
    f: impl FnOnce(&cubecl::client::Client, cubecl::prelude::CubeCount, CubeDim, CubeTensor),
) -> CubeTensor {
    let out = empty_channels_last(out_like, out_like.shape());
    let client = out.client.clone();
    let (count, cube_dim) = elementwise(&client, out.shape().num_elements());
    f(&client, count, cube_dim, out.clone());
    out
}

impl ActOps for CubeBackend {
    fn act_leaky_relu(x: CubeTensor, slope: f32) -> CubeTensor {
        let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
        launch(&x.clone(), |client, count, dim, out| {
            kernels::leaky_relu_forward::launch(
                client,
                count,
                dim,
                x.into_tensor_arg(),
                out.into_tensor_arg(),
                slope,
                dtype,
            )
        })
    }

    fn act_leaky_relu_backward(y: CubeTensor, grad: CubeTensor, slope: f32) -> CubeTensor {
        assert_eq!(grad.dtype, y.dtype, "leaky ReLU: gradient dtype");
        let dtype = burn::backend::cubecl::dtype_to_storage_type(y.dtype);
        launch(&y.clone(), |client, count, dim, out| {
            kernels::leaky_relu_backward::launch(
                client,
                count,
                dim,
                y.into_tensor_arg(),
                grad.into_tensor_arg(),
                out.into_tensor_arg(),
                slope,
                dtype,
            )
        })
    }
}

#[derive(Debug)]
struct LeakyReluBackward;

impl<B: Backend + ActOps> Backward<B, 1> for LeakyReluBackward {
    type State = (FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, slope) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::act_leaky_relu_backward(y, g, slope)
        });
    }
}

impl<B: Backend + ActOps, C: CheckpointStrategy> ActOps for Autodiff<B, C> {
    fn act_leaky_relu(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        let guard = x.node();
        let y = B::act_leaky_relu(x.into_primitive(), slope);
        match LeakyReluBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((y.clone(), slope), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn act_leaky_relu_backward(
        _y: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _slope: f32,
    ) -> FloatTensor<Self> {
        unreachable!("no second derivative of a leaky ReLU")
    }
}

mod kernels {
    use super::super::index::{act_slope, offset, offset_out};
    use cubecl::prelude::*;

    #[cube(launch)]
    pub fn leaky_relu_forward<F: Float>(
        x: &Tensor<F>,
        out: &mut Tensor<F>,
        slope: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let at = ABSOLUTE_POS;
        if at >= out.len() {
            terminate!();
        }
        let plane_len = out.shape(2) * out.shape(3);
        let (p, i) = (at / plane_len, at % plane_len);
        let v = x[offset(x, p, i)];
        let o = offset_out(out, p, i);
        out[o] = select(v > F::new(0.0), v, v * F::cast_from(slope));
    }

    #[cube(launch)]
    pub fn leaky_relu_backward<F: Float>(
        y: &Tensor<F>,
        grad: &Tensor<F>,
        dx: &mut Tensor<F>,
        slope: f32,
        #[define(F)] _dtype: ElemType,
    ) {
        let at = ABSOLUTE_POS;
        if at >= dx.len() {
            terminate!();
        }
        let plane_len = dx.shape(2) * dx.shape(3);
        let (p, i) = (at / plane_len, at % plane_len);
        let g = grad[offset(grad, p, i)];
        let o = offset_out(dx, p, i);
        let factor = act_slope(f32::cast_from(y[offset(y, p, i)]), slope);
        dx[o] = g * F::cast_from(factor);
    }
}
