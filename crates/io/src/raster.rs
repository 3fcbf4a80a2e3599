//! PNG and TIFF grayscale images (8 or 16 bit, or float TIFF); colour is
//! converted to gray with the ITU-R BT.601 luma weights.

use crate::{Error, ErrorKind, Format, Geometry, Result, Slice, Volume};
use image::DynamicImage;
use std::path::Path;

pub fn read_raster(path: &Path) -> Result<Volume> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?
        .len();
    if len == 0 {
        return Err(Error::new(path, ErrorKind::Empty));
    }
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?
        .with_guessed_format()
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    let format = match reader.format() {
        Some(image::ImageFormat::Png) => Format::Png,
        Some(image::ImageFormat::Tiff) => Format::Tiff,
        _ => {
            return Err(Error::new(
                path,
                ErrorKind::UnknownFormat("not a PNG or TIFF image".into()),
            ))
        }
    };
    let img = reader.decode().map_err(|e| {
        Error::new(
            path,
            ErrorKind::Truncated(format!("cannot decode the {format} image: {e}")),
        )
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (dtype, data): (&str, Vec<f32>) = match img {
        DynamicImage::ImageLuma8(b) => ("uint8", b.into_raw().into_iter().map(f32::from).collect()),
        DynamicImage::ImageLumaA8(b) => ("uint8", b.pixels().map(|p| p.0[0] as f32).collect()),
        DynamicImage::ImageLuma16(b) => {
            ("uint16", b.into_raw().into_iter().map(f32::from).collect())
        }
        DynamicImage::ImageLumaA16(b) => ("uint16", b.pixels().map(|p| p.0[0] as f32).collect()),
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            let rgb = img.to_rgb8();
            (
                "uint8 RGB -> gray",
                rgb.pixels().map(|p| luma(p.0.map(f32::from))).collect(),
            )
        }
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgba16(_) => {
            let rgb = img.to_rgb16();
            (
                "uint16 RGB -> gray",
                rgb.pixels().map(|p| luma(p.0.map(f32::from))).collect(),
            )
        }
        other => {
            // Float images: keep values as stored.
            let rgb = other.to_rgb32f();
            ("float32", rgb.pixels().map(|p| luma(p.0)).collect())
        }
    };
    let slice = Slice::new(data, w, h);
    let mut vol = Volume {
        data: vec![0.0; w * h],
        geometry: Geometry::identity([w, h, 1]),
        format,
        dtype: dtype.into(),
        source: path.to_path_buf(),
    };
    slice.write_plane(&mut vol, 2, 0);
    Ok(vol)
}

fn luma([r, g, b]: [f32; 3]) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Save a slice as an 8-bit PNG, mapping `lo..hi` to black..white.
pub fn write_png_gray(path: &Path, slice: &Slice, lo: f32, hi: f32) -> Result<()> {
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let px: Vec<u8> = slice
        .data
        .iter()
        .map(|&v| ((v - lo) * scale).round().clamp(0.0, 255.0) as u8)
        .collect();
    let img = image::GrayImage::from_raw(slice.width as u32, slice.height as u32, px)
        .expect("buffer matches the slice size");
    write_png_atomic(path, &img.into())
}

/// Encode an image as PNG and write it atomically (`NAME.part`, fsync,
/// rename), so an interrupted run never leaves a half-written figure.
pub fn write_png_atomic(path: &Path, img: &image::DynamicImage) -> Result<()> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png)
        .map_err(|e| Error::new(path, ErrorKind::Io(std::io::Error::other(e))))?;
    crate::write_file_atomic(path, bytes.get_ref())
}

/// Tile equally sized slices into one image, row by row, with `gap` pixels
/// of `fill` between tiles (for figures and previews).
pub fn montage(rows: &[Vec<Slice>], gap: usize, fill: f32) -> Slice {
    let (tw, th) = rows
        .iter()
        .flatten()
        .fold((0, 0), |(w, h), s| (w.max(s.width), h.max(s.height)));
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let width = cols * tw + cols.saturating_sub(1) * gap;
    let height = rows.len() * th + rows.len().saturating_sub(1) * gap;
    let mut out = Slice::filled(width.max(1), height.max(1), fill);
    for (ri, row) in rows.iter().enumerate() {
        for (ci, s) in row.iter().enumerate() {
            let (ox, oy) = (ci * (tw + gap), ri * (th + gap));
            for r in 0..s.height {
                let dst = (oy + r) * out.width + ox;
                out.data[dst..dst + s.width]
                    .copy_from_slice(&s.data[r * s.width..(r + 1) * s.width]);
            }
        }
    }
    out
}
