//! The column matrix ("im2col") of one sample, which turns a convolution into one matrix product
//! (`conv`): row `(c*k + ky)*k + kx` holds input channel `c` as kernel tap `(ky, kx)` sees it,
//! one column per output position, zero where the tap falls on padding. `col2im` is its adjoint,
//! used for the input gradient. `Geometry` is the shape of the convolution.

use super::simd::Float;

/// Geometry of one convolution: input [B, C, H, W], square kernel `k`, `stride`, `pad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Geometry {
    pub fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }
    /// Rows of one sample's column matrix: C * k * k.
    pub fn ckk(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Columns of one sample's column matrix: Ho * Wo.
    pub fn hw_out(&self) -> usize {
        let (ho, wo) = self.out_hw();
        ho * wo
    }
    pub(super) fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
    /// Output column range `[lo, hi)` whose input column `ox * s - p + kx` is inside the image.
    #[inline]
    fn valid_range(&self, kx: usize, wo: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        // ix = ox*s + kx - p >= 0  <=>  ox >= ceil((p - kx) / s)
        let lo = if kx >= p { 0 } else { (p - kx).div_ceil(s) };
        // ix <= w - 1  <=>  ox <= (w - 1 + p - kx) / s
        let hi = if self.w + p > kx { ((self.w - 1 + p - kx) / s + 1).min(wo) } else { 0 };
        (lo.min(hi), hi)
    }
}

/// Output rows `[lo, hi)` whose input row `oy * s - p + ky` is inside the image.
#[inline]
fn valid_rows(g: &Geometry, ky: usize, ho: usize) -> (usize, usize) {
    let (s, p) = (g.stride, g.pad);
    let lo = if ky >= p { 0 } else { (p - ky).div_ceil(s) };
    let hi = if g.h + p > ky { ((g.h - 1 + p - ky) / s + 1).min(ho) } else { 0 };
    (lo.min(hi), hi)
}

/// For a stride-1 "same" convolution the input and output rows have the same width, so the
/// valid part of one column-matrix row is the input plane shifted by `offset`: one block copy
/// (or add) instead of one per output row. The entries that would read across a row's edge are
/// the border columns `[0, lo)` and `[hi, wo)`, which the callers zero.
struct Shift {
    /// Range of the column-matrix row to copy, clipped to the plane.
    start: usize,
    end: usize,
    /// `input index = column index + offset`.
    offset: isize,
}

impl Shift {
    fn new(g: &Geometry, ky: usize, kx: usize, rows: (usize, usize)) -> Shift {
        let offset = (ky as isize - g.pad as isize) * g.w as isize + (kx as isize - g.pad as isize);
        let plane = (g.h * g.w) as isize;
        let start = ((rows.0 * g.w) as isize).max(-offset).max(0) as usize;
        let end = ((rows.1 * g.w) as isize).min(plane - offset).max(start as isize) as usize;
        Shift { start, end, offset }
    }
    fn src(&self) -> std::ops::Range<usize> {
        (self.start as isize + self.offset) as usize..(self.end as isize + self.offset) as usize
    }
}

/// Zeroes the columns `[0, lo)` and `[hi, wo)` of output rows `rows` of one column-matrix row.
#[inline]
fn zero_border_columns<T: Float>(row: &mut [T], wo: usize, rows: (usize, usize), (lo, hi): (usize, usize)) {
    // column by column: the borders are one or two entries a row, and a `fill` per row was a
    // library call each
    for col in (0..lo).chain(hi..wo) {
        for oy in rows.0..rows.1 {
            row[oy * wo + col] = T::zero();
        }
    }
}

/// One sample's column matrix: `col[(c*k + ky)*k + kx][oy*wo + ox] = x[c][iy][ix]`, 0 outside.
pub(super) fn im2col<T: Float>(x: &[T], g: &Geometry, col: &mut [T]) {
    let (ho, wo) = g.out_hw();
    let (k, s, p) = (g.k, g.stride, g.pad);
    let hwo = ho * wo;
    let same = s == 1 && wo == g.w;
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..k {
            let rows = valid_rows(g, ky, ho);
            for kx in 0..k {
                let row = &mut col[((c * k + ky) * k + kx) * hwo..][..hwo];
                let (lo, hi) = g.valid_range(kx, wo);
                row[..rows.0 * wo].fill(T::zero());
                row[rows.1 * wo..].fill(T::zero());
                if lo >= hi {
                    row.fill(T::zero());
                    continue;
                }
                if same {
                    let sh = Shift::new(g, ky, kx, rows);
                    row[sh.start..sh.end].copy_from_slice(&plane[sh.src()]);
                    zero_border_columns(row, wo, rows, (lo, hi));
                    continue;
                }
                for oy in rows.0..rows.1 {
                    let out = &mut row[oy * wo..(oy + 1) * wo];
                    let iy = oy * s + ky - p;
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    out[..lo].fill(T::zero());
                    out[hi..].fill(T::zero());
                    let ix0 = lo * s + kx - p;
                    if s == 1 {
                        out[lo..hi].copy_from_slice(&src[ix0..ix0 + (hi - lo)]);
                    } else {
                        for (j, o) in out[lo..hi].iter_mut().enumerate() {
                            *o = src[ix0 + j * s];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back to its input pixel (`dx` zeroed first).
/// `col` is scratch: its entries that belong to padding may be zeroed.
pub(super) fn col2im<T: Float>(col: &mut [T], g: &Geometry, dx: &mut [T]) {
    let (ho, wo) = g.out_hw();
    let (k, s, p) = (g.k, g.stride, g.pad);
    let hwo = ho * wo;
    let same = s == 1 && wo == g.w;
    dx.fill(T::zero());
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..k {
            let rows = valid_rows(g, ky, ho);
            for kx in 0..k {
                let row = &mut col[((c * k + ky) * k + kx) * hwo..][..hwo];
                let (lo, hi) = g.valid_range(kx, wo);
                if lo >= hi {
                    continue;
                }
                if same {
                    // padding entries zeroed, so the block add puts nothing across a row's edge
                    zero_border_columns(row, wo, rows, (lo, hi));
                    let sh = Shift::new(g, ky, kx, rows);
                    for (d, v) in plane[sh.src()].iter_mut().zip(&row[sh.start..sh.end]) {
                        *d += *v;
                    }
                    continue;
                }
                for oy in rows.0..rows.1 {
                    let iy = oy * s + ky - p;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &row[oy * wo + lo..oy * wo + hi];
                    let ix0 = lo * s + kx - p;
                    if s == 1 {
                        for (d, v) in dst[ix0..ix0 + (hi - lo)].iter_mut().zip(src) {
                            *d += *v;
                        }
                    } else {
                        for (j, v) in src.iter().enumerate() {
                            dst[ix0 + j * s] += *v;
                        }
                    }
                }
            }
        }
    }
}
