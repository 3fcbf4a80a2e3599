use crate::Volume;

/// A 2-D image, row-major (`data[row * width + col]`).
///
/// Slices cut from a volume follow one fixed, invertible convention
/// ([`Slice::from_plane`] / [`Slice::write_plane`]): columns run along the
/// lower-numbered in-plane axis, rows along the higher one with row 0 at its
/// far end, so an axial slice of a RAS volume shows anterior at the top.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub data: Vec<f32>,
    pub width: usize,
    pub height: usize,
}

/// The two in-plane voxel axes (columns, rows) of a slice taken along `axis`.
pub fn plane_axes(axis: usize) -> (usize, usize) {
    match axis {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

impl Slice {
    pub fn new(data: Vec<f32>, width: usize, height: usize) -> Self {
        assert_eq!(
            data.len(),
            width * height,
            "slice data does not match its size"
        );
        Slice {
            data,
            width,
            height,
        }
    }

    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Slice::new(vec![value; width * height], width, height)
    }

    #[inline]
    pub fn get(&self, row: usize, col: usize) -> f32 {
        self.data[row * self.width + col]
    }

    /// The slice at `index` along voxel `axis` (0 = x sagittal, 1 = y coronal, 2 = z axial).
    pub fn from_plane(vol: &Volume, axis: usize, index: usize) -> Slice {
        let shape = vol.shape();
        let (cu, cv) = plane_axes(axis);
        let (w, h) = (shape[cu], shape[cv]);
        let mut data = Vec::with_capacity(w * h);
        let mut idx = [0usize; 3];
        idx[axis] = index;
        for row in 0..h {
            idx[cv] = h - 1 - row;
            for col in 0..w {
                idx[cu] = col;
                data.push(vol.data[vol.index(idx[0], idx[1], idx[2])]);
            }
        }
        Slice::new(data, w, h)
    }

    /// Put this slice back at `index` along `axis`: the exact inverse of [`Slice::from_plane`].
    pub fn write_plane(&self, vol: &mut Volume, axis: usize, index: usize) {
        let shape = vol.shape();
        let (cu, cv) = plane_axes(axis);
        assert_eq!(
            (self.width, self.height),
            (shape[cu], shape[cv]),
            "slice does not fit the plane"
        );
        let mut idx = [0usize; 3];
        idx[axis] = index;
        for row in 0..self.height {
            idx[cv] = self.height - 1 - row;
            for col in 0..self.width {
                idx[cu] = col;
                let i = vol.index(idx[0], idx[1], idx[2]);
                vol.data[i] = self.data[row * self.width + col];
            }
        }
    }
}
