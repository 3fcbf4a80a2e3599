//! NumPy `.npy` arrays: the official RegGAN code stores each 2-D slice as one
//! `.npy` in [-1, 1]; medtrans stores a whole split as one `[n, H, W]` array.

use crate::{Error, ErrorKind, Format, Geometry, Result, Slice, Volume, MAX_VOXELS};
use std::io::Read;
use std::path::Path;

/// An array read from `.npy`, converted to `f32`, in C order.
#[derive(Debug, Clone)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// The stored dtype descriptor, e.g. `<f4`.
    pub dtype: String,
}

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    Error::new(
        path,
        ErrorKind::BadHeader {
            format: "NPY",
            detail: detail.into(),
        },
    )
}

/// Value of `'key': value` in the header dict (a tiny parser for the fixed format numpy writes).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k = header.find(&format!("'{key}'"))?;
    let rest = header[k + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    let len = f
        .metadata()
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?
        .len();
    if len == 0 {
        return Err(Error::new(path, ErrorKind::Empty));
    }
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre)
        .map_err(|_| bad(path, "shorter than the 10-byte preamble"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad(path, "missing the \\x93NUMPY magic"));
    }
    let (hlen, skip) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 0usize),
        2 | 3 => {
            let mut more = [0u8; 2];
            f.read_exact(&mut more)
                .map_err(|_| bad(path, "truncated header length"))?;
            (
                u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize,
                2,
            )
        }
        v => return Err(bad(path, format!("format version {v} is unknown"))),
    };
    if (10 + skip + hlen) as u64 > len || hlen > 1 << 20 {
        return Err(bad(path, "header length runs past the end of the file"));
    }
    let mut hbuf = vec![0u8; hlen];
    f.read_exact(&mut hbuf)
        .map_err(|_| bad(path, "truncated header"))?;
    let header = String::from_utf8_lossy(&hbuf).to_string();
    let descr = dict_value(&header, "descr")
        .ok_or_else(|| bad(path, "no 'descr' in header"))?
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let fortran = dict_value(&header, "fortran_order")
        .ok_or_else(|| bad(path, "no 'fortran_order' in header"))?
        == "True";
    let shape_s = dict_value(&header, "shape").ok_or_else(|| bad(path, "no 'shape' in header"))?;
    let shape: Vec<usize> = shape_s
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(path, format!("bad shape {shape_s}")))
        })
        .collect::<Result<_>>()?;
    let total = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_VOXELS)
        .ok_or_else(|| {
            Error::new(
                path,
                ErrorKind::TooLarge(format!("shape {shape:?} exceeds {MAX_VOXELS} elements")),
            )
        })?;
    let (big, kind, size) = {
        let b = descr.as_bytes();
        if b.len() < 3 || !descr.is_ascii() {
            return Err(bad(path, format!("dtype '{descr}'")));
        }
        let big = b[0] == b'>';
        let size: usize = descr[2..]
            .parse()
            .map_err(|_| bad(path, format!("dtype '{descr}'")))?;
        if ![1, 2, 4, 8].contains(&size) {
            return Err(Error::new(
                path,
                ErrorKind::Unsupported(format!("NPY dtype '{descr}'")),
            ));
        }
        (big, b[1], size)
    };
    let nbytes = total * size;
    let start = (10 + skip + hlen) as u64;
    if start + nbytes as u64 > len {
        return Err(Error::new(
            path,
            ErrorKind::Truncated(format!(
                "shape {shape:?} of {descr} needs {nbytes} bytes of data, the file has {}",
                len - start
            )),
        ));
    }
    let mut bytes = vec![0u8; nbytes];
    f.read_exact(&mut bytes)
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    let decoded = if kind == b'f' && size == 2 {
        Some(
            bytes
                .chunks_exact(2)
                .map(|c| {
                    half_to_f32(if big {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    })
                })
                .collect(),
        )
    } else {
        crate::decode::decode(&bytes, if kind == b'b' { b'u' } else { kind }, size, big)
    };
    let Some(mut data) = decoded else {
        return Err(Error::new(
            path,
            ErrorKind::Unsupported(format!("NPY dtype '{descr}'")),
        ));
    };
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    Ok(NpyArray {
        shape,
        data,
        dtype: descr,
    })
}

fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 => {
            if frac == 0.0 {
                f32::INFINITY
            } else {
                f32::NAN
            }
        }
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

fn fortran_to_c(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let n = shape.len();
    let mut out = vec![0.0; data.len()];
    let mut idx = vec![0usize; n];
    for (fi, v) in data.iter().enumerate() {
        // fortran linear index -> multi index (first axis fastest)
        let mut r = fi;
        for k in 0..n {
            idx[k] = r % shape[k];
            r /= shape[k];
        }
        let mut ci = 0;
        for k in 0..n {
            ci = ci * shape[k] + idx[k];
        }
        out[ci] = *v;
    }
    out
}

impl NpyArray {
    /// The array as 2-D slices: `[H, W]` is one slice, `[n, H, W]` is n slices.
    pub fn into_slices(self, path: &Path) -> Result<Vec<Slice>> {
        let (n, h, w) = match self.shape.as_slice() {
            [h, w] => (1, *h, *w),
            [n, h, w] => (*n, *h, *w),
            [n, 1, h, w] => (*n, *h, *w),
            s => {
                return Err(Error::invalid(
                    path,
                    format!(
                        "array of shape {s:?}; expected a 2-D slice [H, W] or a stack [n, H, W]"
                    ),
                ))
            }
        };
        if n == 0 || h == 0 || w == 0 {
            return Err(Error::invalid(
                path,
                format!("array of shape {:?} holds no pixels", self.shape),
            ));
        }
        Ok(self
            .data
            .chunks_exact(h * w)
            .take(n)
            .map(|c| Slice::new(c.to_vec(), w, h))
            .collect())
    }

    /// A volume whose axial slices are this array's slices, rows in the slice convention.
    pub fn into_volume(self, path: &Path) -> Result<Volume> {
        let dtype = self.dtype.clone();
        let slices = self.into_slices(path)?;
        let (w, h) = (slices[0].width, slices[0].height);
        let mut vol = Volume {
            data: vec![0.0; w * h * slices.len()],
            geometry: Geometry::identity([w, h, slices.len()]),
            format: Format::Npy,
            dtype,
            source: path.to_path_buf(),
        };
        for (z, s) in slices.iter().enumerate() {
            s.write_plane(&mut vol, 2, z);
        }
        Ok(vol)
    }
}

/// Element types medtrans writes to `.npy`.
pub trait NpyElement: Copy {
    const DESCR: &'static str;
    fn put(self, out: &mut Vec<u8>);
}
impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}
impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

/// Write a C-order array (version 1.0 format, readable by `numpy.load`).
pub fn write_npy<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "shape does not match data"
    );
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        T::DESCR,
        shape_s
    );
    // Pad so that the data starts on a 64-byte boundary, ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        v.put(&mut out);
    }
    crate::write_file_atomic(path, &out)
}
