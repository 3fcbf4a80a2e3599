//! Moving slices in and out of Burn tensors.
use crate::device::read_f32;
use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};
use medtrans_io::Slice;
use medtrans_networks::Generator;

/// Stack same-sized slices into `[N, 1, H, W]`.
pub fn stack(slices: &[&Slice], device: &Device) -> Tensor<4> {
    let (w, h) = (slices[0].width, slices[0].height);
    let mut v = Vec::with_capacity(slices.len() * w * h);
    for s in slices {
        assert_eq!(
            (s.width, s.height),
            (w, h),
            "slices of one batch differ in size"
        );
        v.extend_from_slice(&s.data);
    }
    Tensor::from_data(TensorData::new(v, [slices.len(), 1, h, w]), device)
}

/// One-hot `[N, classes, H, W]` of same-sized label maps (class numbers
/// as floats; the trainer checks they lie in 0..classes).
pub fn one_hot(labels: &[&Slice], classes: usize, device: &Device) -> Tensor<4> {
    let (w, h) = (labels[0].width, labels[0].height);
    let mut v = vec![0f32; labels.len() * classes * w * h];
    for (i, l) in labels.iter().enumerate() {
        for (p, &c) in l.data.iter().enumerate() {
            let c = (c.max(0.0) as usize).min(classes - 1);
            v[(i * classes + c) * w * h + p] = 1.0;
        }
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes, h, w]), device)
}

/// Split `[N, C, H, W]` into N*C slices (image-major). `what` names the
/// result in the error a failed GPU computation gives.
pub fn unstack(t: Tensor<4>, what: &str) -> Result<Vec<Slice>> {
    let [n, c, h, w] = t.dims();
    let data = read_f32(t, what)?;
    Ok((0..n * c)
        .map(|i| Slice::new(data[i * h * w..(i + 1) * h * w].to_vec(), w, h))
        .collect())
}

/// G(x) for same-sized slices, `batch` at a time. Each batch is submitted
/// before the previous one is read back, so a GPU never waits for the host
/// between batches.
pub fn generate(g: &Generator, xs: &[&Slice], batch: usize, device: &Device) -> Result<Vec<Slice>> {
    generate_with(|x| g.forward(x), xs, batch, device)
}

/// [`generate`] through any translation `f` of a batch.
pub fn generate_with(
    f: impl Fn(Tensor<4>) -> Tensor<4>,
    xs: &[&Slice],
    batch: usize,
    device: &Device,
) -> Result<Vec<Slice>> {
    let mut out = Vec::with_capacity(xs.len());
    let mut pending: Option<Tensor<4>> = None;
    for c in xs.chunks(batch.max(1)) {
        let next = f(stack(c, device));
        if let Some(p) = pending.replace(next) {
            out.extend(unstack(p, "the generator's forward pass")?);
        }
    }
    if let Some(p) = pending {
        out.extend(unstack(p, "the generator's forward pass")?);
    }
    Ok(out)
}
