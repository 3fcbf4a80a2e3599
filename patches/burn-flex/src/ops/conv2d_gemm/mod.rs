//! 2-D convolution and transposed convolution, forward and both backward
//! passes, as im2col / col2im in NCHW plus one GEMM per image and group.
//!
//! medtrans patch (see `patches/README.md` in the medtrans repository).
//! Upstream flex runs a 2-D convolution as a 3-D one: it copies the input
//! to NHWC on one thread, builds im2col one element at a time in 512-pixel
//! tiles and multiplies each tile with a single-threaded GEMM. Its backward
//! passes are Burn's generic fallbacks: the input gradient is a transposed
//! convolution looping over the batch, the weight gradient a convolution
//! with batch and channels swapped. At batch 1 and 16-256 channels (image
//! translation's networks) that leaves one core idle and most time in the
//! copies.
//!
//! Here every pass is the classic lowering, kept in NCHW:
//! - the weight `[c_out, c_in/groups, kh, kw]` already *is* the row-major
//!   matrix `c_out x (c_in/groups * kh * kw)`; no reordering;
//! - im2col rows are `(channel, ki, kj)` and columns output pixels, so a
//!   row is filled by copying runs of an input row (stride 1);
//! - forward `out = W @ col`, input gradient `col2im(W^T @ dout)`, weight
//!   gradient `dW += dout @ col^T`, each one multi-threaded GEMM writing
//!   straight into the destination through strides;
//! - a transposed convolution is the input gradient of the convolution
//!   with the same weight, so it shares the three passes.
//!
//! Output rows are tiled so that the column buffer stays near
//! `lowering::TILE_ELEMS` elements; a 1x1 convolution with stride 1 and no padding
//! reads the input directly.

mod lowering;
mod wide;

use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::{ConvOptions, ConvTransposeOptions};
use burn_std::{Bytes, Shape, f16};

use super::conv_common::{add_bias, convert_bf16_to_f32, convert_f32_to_bf16};
use crate::{FlexTensor, Layout};
use lowering::{GemmElem, Geom, backward_image, backward_weight, forward};

/// A tensor's elements in row-major order, without copying when it already
/// is.
fn dense(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn elems<T: GemmElem>(t: &FlexTensor) -> &[T] {
    let (s, e) = t
        .layout()
        .contiguous_offsets()
        .expect("conv2d_gemm: tensor made contiguous");
    &t.storage::<T>()[s..e]
}

fn tensor<T: GemmElem>(data: Vec<T>, shape: [usize; 4], dtype: DType) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape.to_vec())),
        dtype,
    )
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Runs `f` at the tensors' float type; bf16 goes through f32, like the
/// rest of flex's convolutions.
macro_rules! by_dtype {
    ($dtype:expr, $f:ident, [$($t:expr),*], $o:expr) => {
        match $dtype {
            DType::F32 => $f::<f32>($(&$t),*, $o),
            DType::F64 => $f::<f64>($(&$t),*, $o),
            DType::F16 => $f::<f16>($(&$t),*, $o),
            DType::BF16 => convert_f32_to_bf16(&$f::<f32>($(&convert_bf16_to_f32(&$t)),*, $o)),
            dtype => panic!("conv2d: unsupported dtype {:?}", dtype),
        }
    };
}

/// [`by_dtype`] for the forward passes, whose bias is optional.
macro_rules! biased_by_dtype {
    ($f:ident, $x:expr, $w:expr, $b:expr, $o:expr) => {
        match $x.dtype() {
            DType::F32 => $f::<f32>(&$x, &$w, $b.as_ref(), $o),
            DType::F64 => $f::<f64>(&$x, &$w, $b.as_ref(), $o),
            DType::F16 => $f::<f16>(&$x, &$w, $b.as_ref(), $o),
            DType::BF16 => convert_f32_to_bf16(&$f::<f32>(
                &convert_bf16_to_f32(&$x),
                &convert_bf16_to_f32(&$w),
                $b.as_ref().map(convert_bf16_to_f32).as_ref(),
                $o,
            )),
            dtype => panic!("conv2d: unsupported dtype {:?}", dtype),
        }
    };
}

fn conv_geom(x: [usize; 4], w: [usize; 4], out_hw: [usize; 2], o: &ConvOptions<2>) -> Geom {
    assert_eq!(
        x[1],
        w[1] * o.groups,
        "conv2d: the input has {} channels; the weight takes {} per group, {} groups",
        x[1],
        w[1],
        o.groups
    );
    let [pb_h, pb_w] = o.padding_begin();
    let g = Geom {
        batch: x[0],
        groups: o.groups,
        c_img: x[1],
        h: x[2],
        w: x[3],
        c_col: w[0],
        oh: out_hw[0],
        ow: out_hw[1],
        kh: w[2],
        kw: w[3],
        sh: o.stride[0],
        sw: o.stride[1],
        ph: pb_h,
        pw: pb_w,
        dh: o.dilation[0],
        dw: o.dilation[1],
    };
    g.check();
    g
}

/// A transposed convolution's geometry: its output is the image side, its
/// input the column side.
fn transpose_geom(
    img: [usize; 4],
    col: [usize; 4],
    w: [usize; 4],
    o: &ConvTransposeOptions<2>,
) -> Geom {
    assert!(
        col[1] == w[0] && img[1] == w[1] * o.groups,
        "conv_transpose2d: {} input and {} output channels do not fit a weight of {} x {} per group, {} groups",
        col[1],
        img[1],
        w[0],
        w[1],
        o.groups
    );
    let g = Geom {
        batch: col[0],
        groups: o.groups,
        c_img: img[1],
        h: img[2],
        w: img[3],
        c_col: w[0],
        oh: col[2],
        ow: col[3],
        kh: w[2],
        kw: w[3],
        sh: o.stride[0],
        sw: o.stride[1],
        ph: o.padding[0],
        pw: o.padding[1],
        dh: o.dilation[0],
        dw: o.dilation[1],
    };
    g.check();
    g
}

fn out_size(input: usize, k: usize, s: usize, pb: usize, pe: usize, d: usize) -> usize {
    (input + pb + pe - d * (k - 1) - 1) / s + 1
}

fn transpose_out_size(input: usize, k: usize, s: usize, p: usize, po: usize, d: usize) -> usize {
    (input - 1) * s + d * (k - 1) + po + 1 - 2 * p
}

fn add_bias_to<T: GemmElem>(out: &mut [T], bias: Option<&FlexTensor>, shape: [usize; 4]) {
    if let Some(bias) = bias {
        let bias = dense(bias);
        add_bias(
            out,
            elems::<T>(&bias),
            shape[0],
            shape[1],
            shape[2] * shape[3],
        );
    }
}

fn conv2d_t<T: GemmElem>(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    o: &ConvOptions<2>,
) -> FlexTensor {
    let (x, weight) = (dense(x), dense(weight));
    let (xs, ws) = (dims4(&x), dims4(&weight));
    let oh = out_size(
        xs[2],
        ws[2],
        o.stride[0],
        o.padding[0].0,
        o.padding[0].1,
        o.dilation[0],
    );
    let ow = out_size(
        xs[3],
        ws[3],
        o.stride[1],
        o.padding[1].0,
        o.padding[1].1,
        o.dilation[1],
    );
    let g = conv_geom(xs, ws, [oh, ow], o);
    let mut out = forward(&g, elems::<T>(&x), elems::<T>(&weight));
    let shape = [xs[0], ws[0], oh, ow];
    add_bias_to(&mut out, bias, shape);
    tensor(out, shape, x.dtype())
}

/// `conv2d` forward.
pub fn conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    biased_by_dtype!(conv2d_t, x, weight, bias, options)
}

fn conv2d_x_backward_t<T: GemmElem>(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    let (weight, grad) = (dense(weight), dense(grad));
    let (xs, gs) = (dims4(x), dims4(&grad));
    let g = conv_geom(xs, dims4(&weight), [gs[2], gs[3]], o);
    let dx = backward_image(&g, elems::<T>(&grad), elems::<T>(&weight));
    tensor(dx, xs, grad.dtype())
}

/// `conv2d`'s gradient for its input.
pub fn conv2d_x_backward(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    by_dtype!(
        grad.dtype(),
        conv2d_x_backward_t,
        [x, weight, grad],
        options
    )
}

fn conv2d_weight_backward_t<T: GemmElem>(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    o: &ConvOptions<2>,
) -> FlexTensor {
    let (x, grad) = (dense(x), dense(grad));
    let (ws, gs) = (dims4(weight), dims4(&grad));
    let g = conv_geom(dims4(&x), ws, [gs[2], gs[3]], o);
    let dw = backward_weight(&g, elems::<T>(&x), elems::<T>(&grad));
    tensor(dw, ws, grad.dtype())
}

/// `conv2d`'s gradient for its weight.
pub fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    by_dtype!(
        grad.dtype(),
        conv2d_weight_backward_t,
        [x, weight, grad],
        options
    )
}

fn conv_transpose2d_t<T: GemmElem>(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    let (x, weight) = (dense(x), dense(weight));
    let (xs, ws) = (dims4(&x), dims4(&weight));
    let shape = [
        xs[0],
        ws[1] * o.groups,
        transpose_out_size(
            xs[2],
            ws[2],
            o.stride[0],
            o.padding[0],
            o.padding_out[0],
            o.dilation[0],
        ),
        transpose_out_size(
            xs[3],
            ws[3],
            o.stride[1],
            o.padding[1],
            o.padding_out[1],
            o.dilation[1],
        ),
    ];
    let g = transpose_geom(shape, xs, ws, o);
    let mut out = backward_image(&g, elems::<T>(&x), elems::<T>(&weight));
    add_bias_to(&mut out, bias, shape);
    tensor(out, shape, x.dtype())
}

/// `conv_transpose2d` forward.
pub fn conv_transpose2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    biased_by_dtype!(conv_transpose2d_t, x, weight, bias, options)
}

fn conv_transpose2d_x_backward_t<T: GemmElem>(
    weight: &FlexTensor,
    grad: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    let (weight, grad) = (dense(weight), dense(grad));
    let (ws, gs) = (dims4(&weight), dims4(&grad));
    // The inverse of the transposed output size; output padding may reach
    // the dilation as well as the stride, so it is taken off first.
    let inverse = |out: usize, k: usize, s: usize, p: usize, po: usize, d: usize| {
        (out + 2 * p - d * (k - 1) - po - 1) / s + 1
    };
    let xs = [
        gs[0],
        ws[0],
        inverse(
            gs[2],
            ws[2],
            o.stride[0],
            o.padding[0],
            o.padding_out[0],
            o.dilation[0],
        ),
        inverse(
            gs[3],
            ws[3],
            o.stride[1],
            o.padding[1],
            o.padding_out[1],
            o.dilation[1],
        ),
    ];
    let g = transpose_geom(gs, xs, ws, o);
    let dx = forward(&g, elems::<T>(&grad), elems::<T>(&weight));
    tensor(dx, xs, grad.dtype())
}

/// `conv_transpose2d`'s gradient for its input.
pub fn conv_transpose2d_x_backward(
    weight: FlexTensor,
    grad: FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    by_dtype!(
        grad.dtype(),
        conv_transpose2d_x_backward_t,
        [weight, grad],
        options
    )
}

fn conv_transpose2d_weight_backward_t<T: GemmElem>(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    o: &ConvTransposeOptions<2>,
) -> FlexTensor {
    let (x, grad) = (dense(x), dense(grad));
    let ws = dims4(weight);
    let g = transpose_geom(dims4(&grad), dims4(&x), ws, o);
    let dw = backward_weight(&g, elems::<T>(&grad), elems::<T>(&x));
    tensor(dw, ws, grad.dtype())
}

/// `conv_transpose2d`'s gradient for its weight.
pub fn conv_transpose2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    by_dtype!(
        grad.dtype(),
        conv_transpose2d_weight_backward_t,
        [x, weight, grad],
        options
    )
}
