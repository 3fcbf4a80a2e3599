//! Per-epoch sample grids: one row per image.
use anyhow::Result;
use medtrans_io::{montage, write_png_gray, Slice};
use std::path::Path;

/// Columns: x, G(x), [warped G(x)], y, |G(x) - y|, [|field|]. Images are
/// in [-1, 1]; the error (0..2) and field magnitude (0..its maximum) are
/// stretched to the same grey range. With R, the first row's field is also
/// saved beside the grid (`NAME_field.npy`: rows then columns, in px).
pub fn write_sample_grid(
    path: &Path,
    xs: &[&Slice],
    fakes: &[Slice],
    registered: Option<&(Vec<Slice>, Vec<Slice>)>,
    ys: &[&Slice],
) -> Result<()> {
    let mut rows = Vec::new();
    for i in 0..xs.len() {
        let mut row = vec![xs[i].clone(), fakes[i].clone()];
        if let Some((warped, _)) = registered {
            row.push(warped[i].clone());
        }
        row.push(ys[i].clone());
        let err: Vec<f32> = fakes[i]
            .data
            .iter()
            .zip(&ys[i].data)
            .map(|(a, b)| (a - b).abs() - 1.0)
            .collect();
        row.push(Slice::new(err, ys[i].width, ys[i].height));
        if let Some((_, fields)) = registered {
            // fields holds two channels (rows, columns) per image.
            let (dy, dx) = (&fields[2 * i], &fields[2 * i + 1]);
            let mag: Vec<f32> = dy
                .data
                .iter()
                .zip(&dx.data)
                .map(|(a, b)| a.hypot(*b))
                .collect();
            let max = mag.iter().cloned().fold(1e-6f32, f32::max);
            row.push(Slice::new(
                mag.iter().map(|m| m / max * 2.0 - 1.0).collect(),
                dy.width,
                dy.height,
            ));
        }
        rows.push(row);
    }
    write_png_gray(path, &montage(&rows, 2, -1.0), -1.0, 1.0)?;
    // R's field of the first row, for the report's arrow plot.
    if let (Some((_, fields)), Some(stem)) = (registered, path.file_stem()) {
        let (dy, dx) = (&fields[0], &fields[1]);
        let mut data = dy.data.clone();
        data.extend_from_slice(&dx.data);
        let npy = path.with_file_name(format!("{}_field.npy", stem.to_string_lossy()));
        medtrans_io::write_npy(&npy, &[2, dy.height, dy.width], &data)?;
    }
    Ok(())
}
