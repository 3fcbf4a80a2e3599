//! Moving slices in and out of Burn tensors.
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

/// Split `[N, C, H, W]` into N*C slices (image-major).
pub fn unstack(t: Tensor<4>) -> Vec<Slice> {
    let [n, c, h, w] = t.dims();
    let data: Vec<f32> = t
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 tensor data");
    (0..n * c)
        .map(|i| Slice::new(data[i * h * w..(i + 1) * h * w].to_vec(), w, h))
        .collect()
}

/// G(x) for same-sized slices, `batch` at a time.
pub fn generate(g: &Generator, xs: &[&Slice], batch: usize, device: &Device) -> Vec<Slice> {
    xs.chunks(batch.max(1))
        .flat_map(|c| unstack(g.forward(stack(c, device))))
        .collect()
}
