//! Ops 8-12 composed into one affine colour matrix (4x4, homogeneous, on RGB), applied per pixel.
//!
//! The conventions follow StyleGAN2-ADA (values in `[-1, 1]`, grey axis `v = (1, 1, 1) / sqrt 3`
//! through the origin), except that contrast scales about the image mean rather than about 0, so
//! that contrast does not move the mean (which is brightness's label):
//!
//! - brightness: `x + 0.2 w` on every channel;
//! - contrast: `m' + 2^(0.5 w) (x - m')`, where `m'` is the mean over all channels and pixels
//!   of the image entering the colour stage, after brightness (`m' = mean + 0.2 w_b`);
//! - hue: rotation by `theta` about `v` (right-handed: Rodrigues' formula with axis `v`); it
//!   keeps the "luma" `(r + g + b) / 3` of every pixel (ADA's luma axis is the grey axis);
//! - saturation: `v v^T + 2^w (I - v v^T)`: the chroma (the part orthogonal to `v`) times `2^w`.
//!
//! The matrix is `Sat · Hue · Contrast · Brightness` (table order, brightness applied first).
//! For images with other than three channels only brightness and contrast exist, and act on each
//! channel alike.

use super::params::OpParams;

/// A 4x4 homogeneous colour transform (rows: output r, g, b, 1).
pub type Mat4 = [[f64; 4]; 4];

const IDENTITY: Mat4 = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];

fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut out = [[0.0; 4]; 4];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

fn translate(t: f64) -> Mat4 {
    let mut m = IDENTITY;
    for row in m.iter_mut().take(3) {
        row[3] = t;
    }
    m
}

fn scale(s: f64) -> Mat4 {
    let mut m = IDENTITY;
    for (i, row) in m.iter_mut().enumerate().take(3) {
        row[i] = s;
    }
    m
}

/// `a I + b [v]_x + c v v^T` on the RGB block, `v = (1, 1, 1) / sqrt 3`.
fn about_grey(a: f64, b: f64, c: f64) -> Mat4 {
    let v = 1.0 / 3f64.sqrt();
    // [v]_x for v = (v, v, v): [[0, -v, v], [v, 0, -v], [-v, v, 0]]
    let cross = [[0.0, -v, v], [v, 0.0, -v], [-v, v, 0.0]];
    let mut m = IDENTITY;
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = if i == j { a } else { 0.0 } + b * cross[i][j] + c * v * v;
        }
    }
    m
}

/// The colour matrix of the colour ops that fired, for an image whose mean (over all channels
/// and pixels) is `mean`; `None` when none fired. `rgb` = false ignores hue and saturation.
pub fn matrix(p: &OpParams, mean: f64, rgb: bool) -> Option<Mat4> {
    let hue = p.hue.filter(|_| rgb);
    let sat = p.saturation.filter(|_| rgb);
    if p.brightness.is_none() && p.contrast.is_none() && hue.is_none() && sat.is_none() {
        return None;
    }
    let mut m = IDENTITY;
    let mut mean = mean;
    if let Some(w) = p.brightness {
        let b = 0.2 * w as f64;
        m = mul(&translate(b), &m);
        mean += b;
    }
    if let Some(w) = p.contrast {
        let c = 2f64.powf(0.5 * w as f64);
        m = mul(&mul(&translate(mean), &mul(&scale(c), &translate(-mean))), &m);
    }
    if let Some(theta) = hue {
        let (s, c) = (theta as f64).sin_cos();
        m = mul(&about_grey(c, s, 1.0 - c), &m);
    }
    if let Some(w) = sat {
        let s = 2f64.powf(w as f64);
        // v v^T + s (I - v v^T) = s I + (1 - s) v v^T
        m = mul(&about_grey(s, 0.0, 1.0 - s), &m);
    }
    Some(m)
}

/// Apply `m` to the `c x hw` image `x` in place: per pixel on RGB when `c == 3`, otherwise the
/// same scalar map `m[0][0] x + m[0][3]` on every channel (only brightness and contrast exist
/// there, and they act on all channels alike).
pub fn apply(x: &mut [f32], c: usize, hw: usize, m: &Mat4) {
    if c == 3 {
        for i in 0..hw {
            let rgb = [x[i] as f64, x[hw + i] as f64, x[2 * hw + i] as f64];
            for (ch, row) in m.iter().take(3).enumerate() {
                x[ch * hw + i] = (row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2] + row[3]) as f32;
            }
        }
    } else {
        let (a, b) = (m[0][0], m[0][3]);
        for v in x.iter_mut() {
            *v = (a * *v as f64 + b) as f32;
        }
    }
}
