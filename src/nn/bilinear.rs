//! Bilinear resizing with PyTorch's `interpolate(mode="bilinear", align_corners=False,
//! antialias=False)` semantics, or TensorFlow 1's legacy `resize_bilinear` (the one the 2015
//! Inception FID graph uses), as two dense interpolation matrices applied by matrix products
//! (one along W, one along H). It is a linear map, so the backward is the matrix products'
//! (candle has no backward for `upsample_bilinear2d`).

use candle_core::{DType, Device, Tensor};

/// Where output pixel `i` samples the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceIndex {
    /// PyTorch, align_corners=False: `src = (i + 0.5) * in / out - 0.5`, clamped below at 0
    /// (`area_pixel_compute_source_index`).
    HalfPixel,
    /// TensorFlow 1's `resize_bilinear` (align_corners=False, no half-pixel centres):
    /// `src = i * in / out`. NVIDIA's FID detector reproduces it with `affine_grid` +
    /// `grid_sample` (border padding).
    Legacy,
}

/// The [out, in] matrix of 1-D linear interpolation: output `i` samples the input at `src` (see
/// [`SourceIndex`]), between `floor(src)` and the next index (clamped to the end).
fn interp_matrix(n_in: usize, n_out: usize, index: SourceIndex) -> Vec<f64> {
    let mut m = vec![0.0; n_out * n_in];
    let scale = n_in as f64 / n_out as f64;
    for i in 0..n_out {
        let src = match index {
            SourceIndex::HalfPixel => ((i as f64 + 0.5) * scale - 0.5).max(0.0),
            SourceIndex::Legacy => i as f64 * scale,
        };
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        let l1 = src - i0 as f64;
        m[i * n_in + i0] += 1.0 - l1;
        m[i * n_in + i1] += l1;
    }
    m
}

fn matrix_t(n_in: usize, n_out: usize, index: SourceIndex, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
    // [in, out], so that rows @ matrix_t resizes the last dimension
    Tensor::from_vec(interp_matrix(n_in, n_out, index), (n_out, n_in), device)?.t()?.contiguous()?.to_dtype(dtype)
}

/// Resizes [B,C,H,W] to [B,C,out_h,out_w] as PyTorch's bilinear `interpolate`; identity when the
/// size is unchanged.
pub fn resize_bilinear(x: &Tensor, out_h: usize, out_w: usize) -> candle_core::Result<Tensor> {
    resize_bilinear_with(x, out_h, out_w, SourceIndex::HalfPixel)
}

/// Resizes [B,C,H,W] to [B,C,out_h,out_w] sampling as `index` says; identity when the size is
/// unchanged.
pub fn resize_bilinear_with(x: &Tensor, out_h: usize, out_w: usize, index: SourceIndex) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(x.clone());
    }
    if out_h == 0 || out_w == 0 {
        candle_core::bail!("resize_bilinear: output size {out_h}x{out_w}");
    }
    let (dt, dev) = (x.dtype(), x.device());
    // along W: [B*C*H, W] @ [W, out_w]
    let y = x.contiguous()?.reshape((b * c * h, w))?.matmul(&matrix_t(w, out_w, index, dt, dev)?)?;
    // along H: [B*C*out_w, H] @ [H, out_h]
    let y = y.reshape((b, c, h, out_w))?.transpose(2, 3)?.contiguous()?.reshape((b * c * out_w, h));
    let y = y?.matmul(&matrix_t(h, out_h, index, dt, dev)?)?;
    y.reshape((b, c, out_w, out_h))?.transpose(2, 3)?.contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check, tests::randn};

    fn resize_1d(v: &[f64], n_out: usize) -> Vec<f64> {
        let x = Tensor::from_vec(v.to_vec(), (1, 1, 1, v.len()), &Device::Cpu).unwrap();
        resize_bilinear(&x, 1, n_out).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn values_match_pytorch() {
        // F.interpolate(torch.arange(4.)[None, None], 8, mode="linear", align_corners=False)
        close(&resize_1d(&[0.0, 1.0, 2.0, 3.0], 8), &[0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]);
        // downsampling 4 -> 2 (antialias off): samples at 0.5 and 2.5
        close(&resize_1d(&[0.0, 1.0, 2.0, 3.0], 2), &[0.5, 2.5]);
        // 3 -> 5: src = -0.2 (clamped), 0.4, 1.0, 1.6, 2.2 (clamped to the last)
        close(&resize_1d(&[0.0, 1.0, 4.0], 5), &[0.0, 0.4, 1.0, 2.8, 4.0]);
        // 2-D: separable; [[0,1],[2,3]] -> 4x4: rows of the 1-D result along H and W
        let x = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let y = resize_bilinear(&x, 4, 4).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let r = [0.0, 0.25, 0.75, 1.0];
        let expect: Vec<f64> = (0..16).map(|i| 2.0 * r[i / 4] + r[i % 4]).collect();
        close(&y, &expect);
        // a size that does not change is the identity
        let x = randn(&[1, 2, 3, 5], 50);
        let same = resize_bilinear(&x, 3, 5).unwrap();
        assert_eq!(same.flatten_all().unwrap().to_vec1::<f64>().unwrap(), x.flatten_all().unwrap().to_vec1::<f64>().unwrap());
    }

    #[test]
    fn the_legacy_index_matches_tensorflow_1() {
        // tf.compat.v1.image.resize_bilinear([0,1,2,3], 8): src = i/2, the last clamped to 3
        let x = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0], (1, 1, 1, 4), &Device::Cpu).unwrap();
        let y = resize_bilinear_with(&x, 1, 8, SourceIndex::Legacy).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        close(&y, &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]);
        // 3 -> 5: src = 0, 0.6, 1.2, 1.8, 2.4 (past the end: the last pixel)
        let x = Tensor::from_vec(vec![0.0f64, 1.0, 4.0], (1, 1, 1, 3), &Device::Cpu).unwrap();
        let y = resize_bilinear_with(&x, 1, 5, SourceIndex::Legacy).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        close(&y, &[0.0, 0.6, 1.6, 3.4, 4.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (h, w, oh, ow) in [(5, 4, 9, 7), (8, 8, 3, 5), (28, 28, 64, 64), (3, 3, 3, 6)] {
            let x = randn(&[2, 2, h, w], 51 + (h * w) as u64);
            let g = check(&|ts: &[Tensor]| resize_bilinear(&ts[0], oh, ow), &[x], 40, 1e-5, 52).unwrap();
            assert!(g.probes > 0 && g.max_err < 1e-8, "bilinear {h}x{w}->{oh}x{ow}: {}", g.max_err);
        }
    }
}
