//! Ops 1-7 composed into one affine warp, applied with bilinear sampling and reflect padding.
//!
//! Coordinates: pixel `(x, y)` (column, row; `y` points down) has its centre at
//! `(x + 0.5, y + 0.5)`; the warp works in coordinates centred on the image centre
//! `(W / 2, H / 2)`. In those coordinates the forward map (where the content at `p` moves to) is
//!
//! `q = T · A · R · S · p` (the table order: scale first, translation last), with
//!
//! - `S = 2^(0.2 w) I` (isotropic scale; content grows for `w > 0`),
//! - `R = [[cos t, -sin t], [sin t, cos t]]` (rotation about the image centre; with `y` down a
//!   positive angle turns the `+x` axis towards `+y`, i.e. clockwise on screen),
//! - `A = R(r) · diag(2^(0.2 w), 2^(-0.2 w)) · R(-r)`,
//! - `T`: shift by `(w0 * 0.125 * W, w1 * 0.125 * H)` pixels (right, down).
//!
//! The output pixel at `q` samples the input at `M^-1 q` bilinearly; samples outside the image
//! are read from its mirror image ("reflect" padding, edge pixel not repeated: index `-1` reads
//! `1`, and so on periodically).

use super::params::OpParams;
use super::reflect;

/// A 2-D affine map `p -> m p + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub m: [[f64; 2]; 2],
    pub t: [f64; 2],
}

impl Affine {
    pub const IDENTITY: Affine = Affine { m: [[1.0, 0.0], [0.0, 1.0]], t: [0.0, 0.0] };

    fn linear(m: [[f64; 2]; 2]) -> Affine {
        Affine { m, t: [0.0, 0.0] }
    }

    fn rotation(theta: f64) -> Affine {
        let (s, c) = theta.sin_cos();
        Affine::linear([[c, -s], [s, c]])
    }

    /// `self ∘ other` (apply `other` first).
    pub fn then_after(&self, other: &Affine) -> Affine {
        let (a, b) = (&self.m, &other.m);
        let mut m = [[0.0; 2]; 2];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = a[i][0] * b[0][j] + a[i][1] * b[1][j];
            }
        }
        let t = self.apply(other.t);
        Affine { m, t }
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [self.m[0][0] * p[0] + self.m[0][1] * p[1] + self.t[0], self.m[1][0] * p[0] + self.m[1][1] * p[1] + self.t[1]]
    }

    /// The inverse map (`None` if singular, which the table's ops never are).
    pub fn inverse(&self) -> Option<Affine> {
        let [[a, b], [c, d]] = self.m;
        let det = a * d - b * c;
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let m = [[d / det, -b / det], [-c / det, a / det]];
        let inv = Affine { m, t: [0.0, 0.0] };
        let t = inv.apply(self.t);
        Some(Affine { m, t: [-t[0], -t[1]] })
    }
}

/// The forward map of the geometric ops that fired, in centred pixel coordinates, for an image of
/// `h x w`; `None` when none fired.
pub fn forward(p: &OpParams, h: usize, w: usize) -> Option<Affine> {
    if p.iso_scale.is_none() && p.rotation.is_none() && p.aniso_scale.is_none() && p.translation.is_none() {
        return None;
    }
    let mut m = Affine::IDENTITY;
    if let Some(wi) = p.iso_scale {
        let s = 2f64.powf(0.2 * wi as f64);
        m = Affine::linear([[s, 0.0], [0.0, s]]).then_after(&m);
    }
    if let Some(theta) = p.rotation {
        m = Affine::rotation(theta as f64).then_after(&m);
    }
    if let Some(a) = p.aniso_scale {
        let s = 2f64.powf(0.2 * a.w as f64);
        let frame = Affine::rotation(a.r as f64);
        let back = Affine::rotation(-a.r as f64);
        let aniso = frame.then_after(&Affine::linear([[s, 0.0], [0.0, 1.0 / s]])).then_after(&back);
        m = aniso.then_after(&m);
    }
    if let Some([w0, w1]) = p.translation {
        let t = Affine { m: Affine::IDENTITY.m, t: [w0 as f64 * 0.125 * w as f64, w1 as f64 * 0.125 * h as f64] };
        m = t.then_after(&m);
    }
    Some(m)
}

/// Warp the `c x h x w` image `src` by the forward map `fwd` (centred pixel coordinates).
pub fn warp(src: &[f32], c: usize, h: usize, w: usize, fwd: &Affine) -> Vec<f32> {
    let inv = fwd.inverse().unwrap_or(Affine::IDENTITY);
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let mut out = vec![0f32; c * h * w];
    for y in 0..h {
        for x in 0..w {
            let [px, py] = inv.apply([x as f64 + 0.5 - cx, y as f64 + 0.5 - cy]);
            // Back to index coordinates (pixel centres at integers).
            let (fx, fy) = (px + cx - 0.5, py + cy - 0.5);
            let (x0, y0) = (fx.floor(), fy.floor());
            let (tx, ty) = ((fx - x0) as f32, (fy - y0) as f32);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let (xa, xb) = (reflect(x0, w), reflect(x0 + 1, w));
            let (ya, yb) = (reflect(y0, h), reflect(y0 + 1, h));
            for ch in 0..c {
                let plane = &src[ch * h * w..(ch + 1) * h * w];
                let top = (1.0 - tx) * plane[ya * w + xa] + tx * plane[ya * w + xb];
                let bottom = (1.0 - tx) * plane[yb * w + xa] + tx * plane[yb * w + xb];
                out[(ch * h + y) * w + x] = (1.0 - ty) * top + ty * bottom;
            }
        }
    }
    out
}
