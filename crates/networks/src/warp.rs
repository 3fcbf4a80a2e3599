use burn::tensor::ops::{GridSampleOptions, GridSamplePaddingMode, InterpolateMode};
use burn::tensor::{Device, Tensor, TensorData};

/// Pixel coordinates `[1, H, W, 2]`, last axis (column, row).
pub fn identity_grid(h: usize, w: usize, device: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(h * w * 2);
    for r in 0..h {
        for c in 0..w {
            v.push(c as f32);
            v.push(r as f32);
        }
    }
    Tensor::from_data(TensorData::new(v, [1, h, w, 2]), device)
}

/// Warp `image` `[N, C, H, W]` by a displacement `field` `[N, 2, H, W]` in
/// pixels (channel 0 rows, channel 1 columns): output(p) = image(p + field(p)),
/// bilinear, border padding. Coordinates are normalised with the
/// align-corners convention (pixel centres at -1 and 1), as RegGAN's
/// `Transformer_2D`. Gradients reach both the image and the field.
pub fn warp(image: Tensor<4>, field: Tensor<4>) -> Tensor<4> {
    let [n, _, h, w] = field.dims();
    let device = field.device();
    // [N, H, W, 2] with (dx, dy) in the last axis: the two channels
    // swapped by one flip (a GPU launch each way, where narrowing both and
    // concatenating took several).
    let disp = field.flip([1]).permute([0, 2, 3, 1]);
    // Both constants are made once per size and device (no upload per step).
    let grid = crate::constants::constant(format!("identity grid {h}x{w}"), &device, || {
        identity_grid(h, w, &device)
    });
    let pos = grid.expand([n, h, w, 2]) + disp;
    let scale = crate::constants::constant(format!("grid scale {h}x{w}"), &device, || {
        Tensor::<1>::from_floats(
            [2.0 / (w.max(2) - 1) as f32, 2.0 / (h.max(2) - 1) as f32],
            &device,
        )
        .reshape([1, 1, 1, 2])
    });
    let grid = pos * scale - 1.0;
    image.grid_sample_2d(
        grid,
        GridSampleOptions::new(InterpolateMode::Bilinear)
            .with_padding_mode(GridSamplePaddingMode::Border)
            .with_align_corners(true),
    )
}
