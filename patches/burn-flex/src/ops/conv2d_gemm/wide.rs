//! Stride-1 convolutions with im2col and col2im as whole-row copies.
//!
//! With stride 1, patch element `(c, i, j)` of output pixel `(oy, ox)` is
//! input pixel `(oy + i*dh, ox + j*dw)` of channel `c`. Numbering output
//! pixels along the (padded) input's own row length `wp` instead of `ow`,
//! `p = oy*wp + ox`, puts that input pixel at `i*dh*wp + j*dw + p` of
//! channel `c`'s plane: each im2col row is one contiguous run of the input,
//! and each col2im row one contiguous add, where the general lowering goes
//! output row by output row (16-64 elements at a time in image translation's
//! small layers, so the bookkeeping cost more than the copy: im2col and
//! col2im were a quarter of a 64 px pix2pix step).
//!
//! The columns `ox >= ow` ("wide" columns) wrap into the next input row.
//! The forward drops them; the backward passes give them a zero output
//! gradient, so they add nothing (for finite data: an infinite input or
//! weight times that zero gives a NaN in a gradient where the general
//! lowering has no term). The price: GEMMs `wp / ow` wider (3-10 %
//! for 3x3 and 7x7 layers), a zero-padded copy of the input when the
//! convolution pads, and a copy of the output into its compact layout.

use super::lowering::{GemmElem, Geom, TILE_ELEMS, for_chunks, gemm, transpose, uninit};
use alloc::vec;
use alloc::vec::Vec;

/// The padded input's plane and the tiling of output rows.
#[derive(Clone, Copy)]
pub(super) struct Wide {
    wp: usize,
    plane: usize,
    tile_rows: usize,
}

impl Wide {
    /// The wide layout of `g`, when it applies: stride 1, and an output
    /// that spans the padded input exactly (not so for a stride-1
    /// transposed convolution with output padding). Not for a direct 1x1
    /// convolution, whose im2col matrix is the input itself.
    pub(super) fn of(g: &Geom) -> Option<Self> {
        let (hp, wp) = (g.h + 2 * g.ph, g.w + 2 * g.pw);
        let fits = !g.direct()
            && g.sh == 1
            && g.sw == 1
            && g.oh > 0
            && g.ow > 0
            && g.oh + (g.kh - 1) * g.dh == hp
            && g.ow + (g.kw - 1) * g.dw == wp;
        fits.then(|| Self {
            wp,
            plane: hp * wp,
            tile_rows: (TILE_ELEMS / (g.k() * wp).max(1)).clamp(1, g.oh),
        })
    }

    fn pads(&self, g: &Geom) -> bool {
        g.ph > 0 || g.pw > 0
    }

    /// Output-row tiles as (first row, rows).
    fn tiles(&self, oh: usize) -> impl Iterator<Item = (usize, usize)> + use<> {
        let tile = self.tile_rows;
        (0..oh)
            .step_by(tile)
            .map(move |oy0| (oy0, tile.min(oh - oy0)))
    }

    /// A buffer for one image's padded channels (zeros: the border is
    /// never written), or nothing when the convolution does not pad.
    fn pad_buffer<T: GemmElem>(&self, g: &Geom) -> Vec<T> {
        if self.pads(g) {
            vec![T::default(); g.c_img * self.plane]
        } else {
            Vec::new()
        }
    }

    /// One image's channels (`img`, `c_img x h x w`) with the padding made
    /// real in `buf`, or `img` itself when there is none.
    fn padded<'a, T: GemmElem>(&self, g: &Geom, img: &'a [T], buf: &'a mut [T]) -> &'a [T] {
        if !self.pads(g) {
            return &img[..g.c_img * self.plane];
        }
        let (h, w, wp) = (g.h, g.w, self.wp);
        for_chunks(buf, self.plane, |c, dst| {
            for y in 0..h {
                dst[(y + g.ph) * wp + g.pw..][..w].copy_from_slice(&img[(c * h + y) * w..][..w]);
            }
        });
        buf
    }

    /// `col` (`k x rows*wp`) = the wide im2col of output rows
    /// `oy0..oy0 + rows`, from `src` (one group's padded planes).
    fn im2col<T: GemmElem>(&self, g: &Geom, src: &[T], oy0: usize, rows: usize, col: &mut [T]) {
        let n = rows * self.wp;
        let (kh, kw, plane) = (g.kh, g.kw, self.plane);
        for_chunks(col, n, |r, dst| {
            let (c, i, j) = (r / (kh * kw), (r / kw) % kh, r % kw);
            let start = (oy0 + i * g.dh) * self.wp + j * g.dw;
            // The last wide columns would run past the plane: zeros there
            // (they meet a zero gradient in the weight's backward, and a
            // NaN from an unwritten buffer would not stay out of the sum).
            let len = n.min(plane - start);
            dst[..len].copy_from_slice(&src[c * plane + start..][..len]);
            dst[len..].fill(T::default());
        });
    }

    /// Adds `col` (`k x rows*wp`, wide) back into `dst` (one group's padded
    /// planes). Channels are independent, so they run in parallel; a row's
    /// add stops at its plane's end (what lies beyond is wide columns,
    /// zeros).
    fn col2im_add<T: GemmElem>(&self, g: &Geom, col: &[T], oy0: usize, rows: usize, dst: &mut [T]) {
        let n = rows * self.wp;
        let (kh, kw, plane) = (g.kh, g.kw, self.plane);
        for_chunks(dst, plane, |c, pl| {
            for i in 0..kh {
                for j in 0..kw {
                    let src = &col[((c * kh + i) * kw + j) * n..][..n];
                    let start = (oy0 + i * g.dh) * self.wp + j * g.dw;
                    let len = n.min(plane - start);
                    for (d, v) in pl[start..start + len].iter_mut().zip(&src[..len]) {
                        *d += *v;
                    }
                }
            }
        });
    }

    /// `dst` (`c x rows*wp`) = output rows `oy0..oy0 + rows` of `src`
    /// (`c` planes of `oh x ow`), wide columns zero.
    fn widen<T: GemmElem>(&self, g: &Geom, src: &[T], oy0: usize, rows: usize, dst: &mut [T]) {
        let (ow, wp, ohw) = (g.ow, self.wp, g.oh * g.ow);
        for (c, d) in dst.chunks_exact_mut(rows * wp).enumerate() {
            for t in 0..rows {
                let row = &mut d[t * wp..(t + 1) * wp];
                row[..ow].copy_from_slice(&src[c * ohw + (oy0 + t) * ow..][..ow]);
                row[ow..].fill(T::default());
            }
        }
    }
}

/// [`super::lowering::forward`] on the wide layout.
pub(super) fn forward<T: GemmElem>(g: &Geom, wd: Wide, img: &[T], wmat: &[T]) -> Vec<T> {
    let (k, cg_col, cg_img) = (g.k(), g.cg_col(), g.cg_img());
    let (hw, ohw, wp) = (g.h * g.w, g.oh * g.ow, wd.wp);
    // Every element is written by the compaction below.
    let mut out: Vec<T> = uninit(g.batch * g.c_col * ohw);
    let mut pad = wd.pad_buffer(g);
    let mut col: Vec<T> = uninit(k * wd.tile_rows * wp);
    let mut wide_out: Vec<T> = uninit(cg_col * wd.tile_rows * wp);
    for b in 0..g.batch {
        let src = wd.padded(g, &img[b * g.c_img * hw..], &mut pad);
        for grp in 0..g.groups {
            let src_g = &src[grp * cg_img * wd.plane..][..cg_img * wd.plane];
            let w_g = &wmat[grp * cg_col * k..][..cg_col * k];
            let out_g = (b * g.c_col + grp * cg_col) * ohw;
            for (oy0, rows) in wd.tiles(g.oh) {
                let n = rows * wp;
                wd.im2col(g, src_g, oy0, rows, &mut col[..k * n]);
                unsafe {
                    gemm(
                        cg_col,
                        n,
                        k,
                        (wide_out.as_mut_ptr(), n, 1),
                        false,
                        (w_g.as_ptr(), k, 1),
                        (col.as_ptr(), n, 1),
                    );
                }
                for co in 0..cg_col {
                    for t in 0..rows {
                        out[out_g + co * ohw + (oy0 + t) * g.ow..][..g.ow]
                            .copy_from_slice(&wide_out[co * n + t * wp..][..g.ow]);
                    }
                }
            }
        }
    }
    out
}

/// [`super::lowering::backward_image`] on the wide layout.
pub(super) fn backward_image<T: GemmElem>(g: &Geom, wd: Wide, cols: &[T], wmat: &[T]) -> Vec<T> {
    let (k, cg_col, cg_img) = (g.k(), g.cg_col(), g.cg_img());
    let (hw, ohw, wp) = (g.h * g.w, g.oh * g.ow, wd.wp);
    let mut img = vec![T::default(); g.batch * g.c_img * hw];
    let mut pad = wd.pad_buffer(g);
    let mut col: Vec<T> = uninit(k * wd.tile_rows * wp);
    let mut dy: Vec<T> = uninit(cg_col * wd.tile_rows * wp);
    for b in 0..g.batch {
        let img_b = &mut img[b * g.c_img * hw..][..g.c_img * hw];
        // Without padding the image is its own padded plane.
        let acc: &mut [T] = if wd.pads(g) {
            pad.fill(T::default());
            &mut pad
        } else {
            img_b
        };
        for grp in 0..g.groups {
            let cols_g = &cols[(b * g.c_col + grp * cg_col) * ohw..][..cg_col * ohw];
            let w_g = &wmat[grp * cg_col * k..][..cg_col * k];
            let acc_g = &mut acc[grp * cg_img * wd.plane..][..cg_img * wd.plane];
            for (oy0, rows) in wd.tiles(g.oh) {
                let n = rows * wp;
                wd.widen(g, cols_g, oy0, rows, &mut dy[..cg_col * n]);
                // W^T: k x cg_col, read from the c_col x k weight.
                unsafe {
                    gemm(
                        k,
                        n,
                        cg_col,
                        (col.as_mut_ptr(), n, 1),
                        false,
                        (w_g.as_ptr(), 1, k),
                        (dy.as_ptr(), n, 1),
                    );
                }
                wd.col2im_add(g, &col[..k * n], oy0, rows, acc_g);
            }
        }
        if wd.pads(g) {
            let img_b = &mut img[b * g.c_img * hw..][..g.c_img * hw];
            for (c, dst) in img_b.chunks_exact_mut(hw).enumerate() {
                for y in 0..g.h {
                    dst[y * g.w..][..g.w]
                        .copy_from_slice(&pad[c * wd.plane + (y + g.ph) * wp + g.pw..][..g.w]);
                }
            }
        }
    }
    img
}

/// [`super::lowering::backward_weight`] on the wide layout: `dW^T += im2col
/// @ dY^T`, accumulated column-major as there, with `dY^T` widened (zero
/// rows for the wide columns).
pub(super) fn backward_weight<T: GemmElem>(g: &Geom, wd: Wide, img: &[T], cols: &[T]) -> Vec<T> {
    let (k, cg_col, cg_img) = (g.k(), g.cg_col(), g.cg_img());
    let (hw, ohw, wp) = (g.h * g.w, g.oh * g.ow, wd.wp);
    let mut dwt = vec![T::default(); g.c_col * k];
    let mut pad = wd.pad_buffer(g);
    let mut col: Vec<T> = uninit(k * wd.tile_rows * wp);
    // dY^T widened: (oh * wp) x cg_col; the wide rows stay zero.
    let mut dyt = vec![T::default(); g.oh * wp * cg_col];
    for b in 0..g.batch {
        let src = wd.padded(g, &img[b * g.c_img * hw..], &mut pad);
        for grp in 0..g.groups {
            let src_g = &src[grp * cg_img * wd.plane..][..cg_img * wd.plane];
            let cols_g = &cols[(b * g.c_col + grp * cg_col) * ohw..][..cg_col * ohw];
            for oy in 0..g.oh {
                let d = &mut dyt[oy * wp * cg_col..][..g.ow * cg_col];
                transpose(&cols_g[oy * g.ow..], cg_col, g.ow, ohw, d);
            }
            let dwt_g = unsafe { dwt.as_mut_ptr().add(grp * cg_col * k) };
            for (oy0, rows) in wd.tiles(g.oh) {
                let n = rows * wp;
                wd.im2col(g, src_g, oy0, rows, &mut col[..k * n]);
                unsafe {
                    gemm(
                        cg_col,
                        k,
                        n,
                        (dwt_g, 1, cg_col),
                        true,
                        (dyt[oy0 * wp * cg_col..].as_ptr(), 1, cg_col),
                        (col.as_ptr(), 1, n),
                    );
                }
            }
        }
    }
    dwt
}
