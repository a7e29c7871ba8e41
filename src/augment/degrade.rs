//! Ops 13-15: Gaussian blur, mixup, noise on a shell.

use super::reflect;

/// Half-width of the blur kernel: 11 taps (`-5..=5`).
pub const BLUR_RADIUS: usize = 5;

/// The normalised 1-D Gaussian of `sigma` on taps `-5..=5` (a unit impulse for `sigma <= 0`).
pub fn gaussian_kernel(sigma: f32) -> [f32; 2 * BLUR_RADIUS + 1] {
    let mut k = [0f32; 2 * BLUR_RADIUS + 1];
    if sigma.is_nan() || sigma <= 0.0 {
        k[BLUR_RADIUS] = 1.0;
        return k;
    }
    let s = sigma as f64;
    let raw: Vec<f64> = (0..k.len()).map(|i| (-((i as f64 - BLUR_RADIUS as f64).powi(2)) / (2.0 * s * s)).exp()).collect();
    let total: f64 = raw.iter().sum();
    for (dst, v) in k.iter_mut().zip(raw) {
        *dst = (v / total) as f32;
    }
    k
}

/// Blur each channel of the `c x h x w` image `x` with the separable 11x11 Gaussian of `sigma`
/// (rows then columns), reflect padding. `sigma <= 0` leaves `x` unchanged.
pub fn blur(x: &mut [f32], c: usize, h: usize, w: usize, sigma: f32) {
    if sigma.is_nan() || sigma <= 0.0 {
        return;
    }
    let k = gaussian_kernel(sigma);
    let r = BLUR_RADIUS as i64;
    let mut tmp = vec![0f32; h * w];
    for plane in x.chunks_exact_mut(h * w).take(c) {
        for y in 0..h {
            for xx in 0..w {
                tmp[y * w + xx] = (-r..=r).map(|d| k[(d + r) as usize] * plane[y * w + reflect(xx as i64 + d, w)]).sum();
            }
        }
        for y in 0..h {
            for xx in 0..w {
                plane[y * w + xx] = (-r..=r).map(|d| k[(d + r) as usize] * tmp[reflect(y as i64 + d, h) * w + xx]).sum();
            }
        }
    }
}

/// `x = (1 - w) x + w other`.
pub fn mixup(x: &mut [f32], other: &[f32], w: f32) {
    for (v, o) in x.iter_mut().zip(other) {
        *v = (1.0 - w) * *v + w * o;
    }
}

/// `x += w * sqrt(n) * z / ||z||` (`n = x.len()`); a zero `z` adds nothing.
pub fn shell_noise(x: &mut [f32], w: f32, z: &[f32]) {
    let norm = z.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    if norm == 0.0 {
        return;
    }
    let scale = w as f64 * (x.len() as f64).sqrt() / norm;
    for (v, &zi) in x.iter_mut().zip(z) {
        *v = (*v as f64 + scale * zi as f64) as f32;
    }
}
