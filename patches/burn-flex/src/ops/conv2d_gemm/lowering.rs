//! The lowering itself: geometry, im2col, col2im, and the three passes
//! (forward, input gradient, weight gradient) as GEMMs over NCHW buffers.

use alloc::vec;
use alloc::vec::Vec;
use burn_std::{Element, ElementAdd, f16};
use core::ops::AddAssign;

use super::wide::{self, Wide};
/// Column-buffer budget per tile, in elements (16 MiB of f32).
pub(super) const TILE_ELEMS: usize = 1 << 22;

/// Below this many elements a buffer is filled on the calling thread.
const PAR_MIN_ELEMS: usize = 1 << 15;

/// An element the `gemm` crate multiplies natively.
pub(super) trait GemmElem:
    bytemuck::Pod + Default + AddAssign + Element + ElementAdd + Send + Sync + 'static
{
    const ONE: Self;
}

impl GemmElem for f32 {
    const ONE: Self = 1.0;
}
impl GemmElem for f64 {
    const ONE: Self = 1.0;
}
impl GemmElem for f16 {
    const ONE: Self = f16::ONE;
}

/// The geometry of one convolution, from the image side (the convolution's
/// input, `c_img x h x w`) to the column side (its output, `c_col x oh x
/// ow`). A transposed convolution runs the same geometry backwards.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geom {
    pub(super) batch: usize,
    pub(super) groups: usize,
    pub(super) c_img: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c_col: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) sh: usize,
    pub(super) sw: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    pub(super) dh: usize,
    pub(super) dw: usize,
}

impl Geom {
    pub(super) fn cg_img(&self) -> usize {
        self.c_img / self.groups
    }
    pub(super) fn cg_col(&self) -> usize {
        self.c_col / self.groups
    }
    /// Rows of the im2col matrix of one group.
    pub(super) fn k(&self) -> usize {
        self.cg_img() * self.kh * self.kw
    }
    /// A 1x1 convolution whose im2col matrix is the input itself.
    pub(super) fn direct(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.ph == 0
            && self.pw == 0
            && self.h == self.oh
            && self.w == self.ow
    }
    /// Output rows per tile.
    fn tile_rows(&self) -> usize {
        (TILE_ELEMS / (self.k() * self.ow).max(1)).clamp(1, self.oh.max(1))
    }
    /// The range of output columns `ox` whose input column for kernel
    /// column `j` lies inside the image.
    fn valid_ox(&self, j: usize) -> (usize, usize) {
        let off = j * self.dw; // ix = ox * sw + off - pw
        let lo = if off >= self.pw {
            0
        } else {
            (self.pw - off).div_ceil(self.sw)
        };
        let hi = if self.w + self.pw > off {
            (self.w + self.pw - off).div_ceil(self.sw)
        } else {
            0
        };
        (lo.min(self.ow), hi.min(self.ow).max(lo.min(self.ow)))
    }
    /// The channels split into the groups. Every buffer access is
    /// bounds-checked anyway (padding is read as zeros); this turns a
    /// grouping mismatch into a clear panic rather than wrong values.
    pub(super) fn check(&self) {
        assert!(
            self.groups > 0
                && self.c_img.is_multiple_of(self.groups)
                && self.c_col.is_multiple_of(self.groups),
            "conv2d: {} and {} channels do not split into {} groups",
            self.c_img,
            self.c_col,
            self.groups
        );
    }
    /// Output-row tiles as (first row, rows, output pixels).
    fn tiles(&self) -> impl Iterator<Item = (usize, usize, usize)> + use<> {
        let (tile, oh, ow) = (self.tile_rows(), self.oh, self.ow);
        (0..oh).step_by(tile).map(move |oy0| {
            let rows = tile.min(oh - oy0);
            (oy0, rows, rows * ow)
        })
    }
    /// One tile's column buffer; the direct path reads the image instead.
    fn col_buffer<T: GemmElem>(&self) -> Vec<T> {
        if self.direct() {
            Vec::new()
        } else {
            uninit(self.k() * self.tile_rows() * self.ow) // im2col writes all of it
        }
    }
    /// The input row for output row `oy` and kernel row `i`, if inside.
    fn iy(&self, oy: usize, i: usize) -> Option<usize> {
        let y = (oy * self.sh + i * self.dh) as isize - self.ph as isize;
        (y >= 0 && (y as usize) < self.h).then_some(y as usize)
    }
}

/// A buffer whose every element the caller writes before reading: large
/// convolution buffers would otherwise be cleared for nothing.
pub(super) fn uninit<T: GemmElem>(len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    #[allow(clippy::uninit_vec)]
    unsafe {
        v.set_len(len);
    }
    v
}

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `data`, on rayon's
/// pool when the buffer is large enough to pay for it.
pub(super) fn for_chunks<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    if chunk == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    if data.len() >= PAR_MIN_ELEMS {
        use rayon::prelude::*;
        data.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
        return;
    }
    for (i, c) in data.chunks_mut(chunk).enumerate() {
        f(i, c);
    }
}

/// Fills `col` (`k x (rows * ow)`) with the patches of output rows
/// `oy0..oy0 + rows`, from `img` (one group's `cg_img` channels).
fn im2col<T: GemmElem>(g: &Geom, img: &[T], oy0: usize, rows: usize, col: &mut [T]) {
    let zero = T::default();
    let p = rows * g.ow;
    let (kh, kw, hw) = (g.kh, g.kw, g.h * g.w);
    for_chunks(col, p, |r, dst| {
        let (c, i, j) = (r / (kh * kw), (r / kw) % kh, r % kw);
        let plane = &img[c * hw..(c + 1) * hw];
        let (lo, hi) = g.valid_ox(j);
        for (t, out) in dst.chunks_mut(g.ow).enumerate() {
            let Some(iy) = g.iy(oy0 + t, i) else {
                out.fill(zero);
                continue;
            };
            let row = &plane[iy * g.w..(iy + 1) * g.w];
            out[..lo].fill(zero);
            out[hi..].fill(zero);
            if hi == lo {
                continue;
            }
            let x0 = lo * g.sw + j * g.dw - g.pw;
            if g.sw == 1 {
                out[lo..hi].copy_from_slice(&row[x0..x0 + (hi - lo)]);
            } else {
                for (k, o) in out[lo..hi].iter_mut().enumerate() {
                    *o = row[x0 + k * g.sw];
                }
            }
        }
    });
}

/// A tile's im2col matrix (`k x p`) as a pointer and the stride between its
/// rows: the image itself on the direct path, else `col`, filled.
fn patches<T: GemmElem>(
    g: &Geom,
    img: &[T],
    oy0: usize,
    rows: usize,
    col: &mut [T],
) -> (*const T, usize) {
    if g.direct() {
        (img[oy0 * g.ow..].as_ptr(), g.h * g.w)
    } else {
        let p = rows * g.ow;
        im2col(g, img, oy0, rows, &mut col[..g.k() * p]);
        (col.as_ptr(), p)
    }
}

/// Adds the patches in `col` (`k x (rows * ow)`, output rows
/// `oy0..oy0 + rows`) back into `img` (one group's channels). Channels are
/// independent, so they run in parallel.
fn col2im_add<T: GemmElem>(g: &Geom, col: &[T], oy0: usize, rows: usize, img: &mut [T]) {
    let p = rows * g.ow;
    let (kh, kw) = (g.kh, g.kw);
    for_chunks(img, g.h * g.w, |c, plane| {
        for i in 0..kh {
            for j in 0..kw {
                let src = &col[((c * kh + i) * kw + j) * p..][..p];
                let (lo, hi) = g.valid_ox(j);
                if hi == lo {
                    continue;
                }
                for t in 0..rows {
                    let Some(iy) = g.iy(oy0 + t, i) else {
                        continue;
                    };
                    let row = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let s = &src[t * g.ow..(t + 1) * g.ow];
                    let dst = &mut row[lo * g.sw + j * g.dw - g.pw..];
                    // One contribution per element here: the order of the
                    // sums is the loop order above, vectorised or not.
                    if g.sw == 1 {
                        for (d, v) in dst[..hi - lo].iter_mut().zip(&s[lo..hi]) {
                            *d += *v;
                        }
                    } else {
                        for (d, v) in dst.iter_mut().step_by(g.sw).zip(&s[lo..hi]) {
                            *d += *v;
                        }
                    }
                }
            }
        }
    });
}

/// `dst (m x n) = [dst +] lhs (m x k) @ rhs (k x n)`, each operand given
/// as (pointer, row stride, column stride).
pub(super) unsafe fn gemm<T: GemmElem>(
    m: usize,
    n: usize,
    k: usize,
    (dst, dst_rs, dst_cs): (*mut T, usize, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const T, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const T, usize, usize),
) {
    if k == 0 {
        // An empty sum: the destination, which may be uninitialised, is 0.
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    unsafe { dst.add(r * dst_rs + c * dst_cs).write(T::default()) };
                }
            }
        }
        return;
    }
    #[cfg(feature = "rayon")]
    let par = gemm::Parallelism::Rayon(0);
    #[cfg(not(feature = "rayon"))]
    let par = gemm::Parallelism::None;
    let (alpha, beta) = if accumulate {
        (T::ONE, T::ONE)
    } else {
        (T::default(), T::ONE)
    };
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            alpha,
            beta,
            false,
            false,
            false,
            par,
        );
    }
}

/// The column side from the image side: `cols = W @ im2col(img)`.
/// `wmat` is `c_col x k` per group (a conv2d weight as stored).
pub(super) fn forward<T: GemmElem>(g: &Geom, img: &[T], wmat: &[T]) -> Vec<T> {
    if let Some(wd) = Wide::of(g) {
        return wide::forward(g, wd, img, wmat);
    }
    let (k, cg_col, cg_img) = (g.k(), g.cg_col(), g.cg_img());
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    // Every element is written by a GEMM that does not read it.
    let mut out: Vec<T> = uninit(g.batch * g.c_col * ohw);
    let mut col = g.col_buffer();
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let img_g = &img[(b * g.c_img + grp * cg_img) * hw..][..cg_img * hw];
            let w_g = &wmat[grp * cg_col * k..][..cg_col * k];
            let out_g = (b * g.c_col + grp * cg_col) * ohw;
            for (oy0, rows, p) in g.tiles() {
                let (rhs, rhs_rs) = patches(g, img_g, oy0, rows, &mut col);
                unsafe {
                    gemm(
                        cg_col,
                        p,
                        k,
                        (out.as_mut_ptr().add(out_g + oy0 * g.ow), ohw, 1),
                        false,
                        (w_g.as_ptr(), k, 1),
                        (rhs, rhs_rs, 1),
                    );
                }
            }
        }
    }
    out
}

/// The image side from the column side: `img = col2im(W^T @ cols)`.
pub(super) fn backward_image<T: GemmElem>(g: &Geom, cols: &[T], wmat: &[T]) -> Vec<T> {
    if let Some(wd) = Wide::of(g) {
        return wide::backward_image(g, wd, cols, wmat);
    }
    let (k, cg_col, cg_img) = (g.k(), g.cg_col(), g.cg_img());
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    // col2im adds into the image; the direct path's GEMM overwrites it.
    let mut img = if g.direct() {
        uninit(g.batch * g.c_img * hw)
    } else {
        vec![T::default(); g.batch * g.c_img * hw]
    };
    let mut col = g.col_buffer();
    for b in 0..g.batch {
        for grp in 0..g.groups {
            let cols_g = &cols[(b * g.c_col + grp * cg_col) * ohw..][..cg_col * ohw];
            let w_g = &wmat[grp * cg_col * k..][..cg_col * k];
            let img_off = (b * g.c_img + grp * cg_img) * hw;
            for (oy0, rows, p) in g.tiles() {
                let (dst, dst_rs) = if g.direct() {
                    (unsafe { img.as_mut_ptr().add(img_off + oy0 * g.ow) }, hw)
                } else {
                    (col.as_mut_ptr(), p)
                };
                // W^T: k x cg_col, read from the c_col x k weight.
                unsafe {
                    gemm(
                        k,
                        p,
                        cg_col,
                        (dst, dst_rs, 1),
                        false,
                        (w_g.as_ptr(), 1, k),
                        (cols_g[oy0 * g.ow..].as_ptr(), ohw, 1),
                    );
                }
                if !g.direct() {
                    col2im_add(
                        g,
                        &col[..k * p],
                        oy0,
                        rows,
                        &mut img[img_off..img_off + cg_img * hw],
                    );
                }
            }
        }
    }
    img
}

/// The weight's gradient: `dW = sum over images of cols @ im2col(img)^T`.
pub(super) fn backward_weight<T: GemmElem>(g: &Geom, img: &[T], cols: &[T]) -> Vec<T> {
    let k = g.k();
    let cg_col = g.cg_col();
    // Accumulated column-major, `k x c_out` per group (below).
    let dwt = match Wide::of(g) {
        Some(wd) => wide::backward_weight(g, wd, img, cols),
        None => backward_weight_t(g, img, cols),
    };
    // Back to the weight's layout, c_out x k per group.
    let mut dw = vec![T::default(); g.c_col * k];
    for grp in 0..g.groups {
        let n = cg_col * k;
        transpose(
            &dwt[grp * n..][..n],
            k,
            cg_col,
            cg_col,
            &mut dw[grp * n..][..n],
        );
    }
    dw
}

/// `dW^T` (`k x c_out` per group) by the general lowering.
fn backward_weight_t<T: GemmElem>(g: &Geom, img: &[T], cols: &[T]) -> Vec<T> {
    let (k, cg_col, cg_img) = (g.k(), g.cg_col(), g.cg_img());
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    // `dW = dY @ im2col^T` with dY and im2col both contiguous along the
    // pixels, the GEMM's inner dimension. Written as is, the GEMM packs
    // im2col element by element with a stride of a whole row (a quarter of
    // a RegGAN step at 64 px went there). So dY is transposed (pixels x
    // channels, a small copy) and the product is accumulated column-major
    // in `dwt` (k x c_out per group): the GEMM then reads both operands in
    // place. Zeroed, small: an empty batch or output leaves it untouched.
    let mut dwt = vec![T::default(); g.c_col * k];
    let mut col = g.col_buffer();
    let mut dyt: Vec<T> = uninit(ohw * cg_col);
    for grp in 0..g.groups {
        let dwt_g = unsafe { dwt.as_mut_ptr().add(grp * cg_col * k) };
        for b in 0..g.batch {
            let img_g = &img[(b * g.c_img + grp * cg_img) * hw..][..cg_img * hw];
            let cols_g = &cols[(b * g.c_col + grp * cg_col) * ohw..][..cg_col * ohw];
            transpose(cols_g, cg_col, ohw, ohw, &mut dyt);
            for (oy0, rows, p) in g.tiles() {
                let (rhs, rhs_cs) = patches(g, img_g, oy0, rows, &mut col);
                // im2col^T: p x k, read from the k x p buffer.
                unsafe {
                    gemm(
                        cg_col,
                        k,
                        p,
                        (dwt_g, 1, cg_col),
                        true,
                        (dyt[oy0 * g.ow * cg_col..].as_ptr(), 1, cg_col),
                        (rhs, 1, rhs_cs),
                    );
                }
            }
        }
    }
    dwt
}

/// `dst` (`cols x rows`, contiguous) = `src` (`rows x cols`, rows
/// `src_rs` apart) transposed, in blocks that stay in cache.
pub(super) fn transpose<T: GemmElem>(
    src: &[T],
    rows: usize,
    cols: usize,
    src_rs: usize,
    dst: &mut [T],
) {
    const B: usize = 16;
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src_rs >= cols && src.len() >= (rows - 1) * src_rs + cols && dst.len() >= rows * cols);
    for r0 in (0..rows).step_by(B) {
        let r1 = (r0 + B).min(rows);
        for c0 in (0..cols).step_by(B) {
            for c in c0..(c0 + B).min(cols) {
                let d = &mut dst[c * rows + r0..c * rows + r1];
                for (k, v) in d.iter_mut().enumerate() {
                    // In bounds: r0 + k < rows and c < cols (checked above).
                    *v = unsafe { *src.get_unchecked((r0 + k) * src_rs + c) };
                }
            }
        }
    }
}
