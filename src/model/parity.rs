//! The networks as cross-backend parity cases (see `nn::parity`): the UNet denoiser in training
//! mode (dropout on), MFD through a random phi, and both LPIPS backbones, on MNIST-like inputs
//! with flat backgrounds (max-pool ties).

use candle_core::{DType, Device, Tensor};

use super::lpips::{Lpips, LpipsNet};
use super::phi::{mfd, Phi, PhiConfig};
use super::{Denoiser, UNetConfig};
use crate::nn::parity::{host, randn, tied, Case};
use crate::nn::Ctx;

fn tiny_unet() -> UNetConfig {
    UNetConfig {
        channels: vec![8, 16],
        blocks_per_level: 1,
        emb_dim: 16,
        noise_freqs: 4,
        groups: 4,
        attention_levels: vec![1],
        dropout: 0.1,
        ..UNetConfig::default()
    }
}

/// Images in (-1, 1) with a flat top half.
fn images(seed: u64) -> Tensor {
    tied(&[4, 1, 16, 16], seed).tanh().expect("host ops")
}

/// The cases; an LPIPS backbone whose weights are not here (VGG16's on a GPU machine, where
/// the 59 MB file does not travel) is left out and named in the second list.
pub fn network_cases() -> (Vec<Case>, Vec<String>) {
    let sigma = host(&Tensor::new(&[0.05f32, 0.5, 2.0, 20.0], &Device::Cpu).expect("host tensor"));
    let mut cases = vec![Case::new("UNet denoiser (training, dropout)", vec![randn(&[4, 1, 16, 16], 20)], 1e-4, move |t, dev| {
        let m = Denoiser::new(&tiny_unet(), 1, 0.5, 3, dev).expect("denoiser");
        m.forward(&t[0], &sigma, &Ctx::train(5)).expect("denoiser forward")
    })];
    let phi_cfg = PhiConfig { widths: vec![8, 16], depth: 1, groups: 4, ..PhiConfig::default() };
    cases.push(Case::new("MFD through phi", vec![images(21), images(22)], 1e-4, move |t, dev| {
        let phi = Phi::new(&phi_cfg, 1, 5, 4, dev).expect("phi").frozen();
        mfd(&phi, &t[0], &t[1], 1e-5).expect("mfd")
    }));
    let mut missing = Vec::new();
    for (net, resize) in [(LpipsNet::Alex, Some(64)), (LpipsNet::Vgg, None)] {
        if !net.weights_present() {
            missing.push(format!("LPIPS {} (no weights in {})", net.name(), super::lpips::weights_root().join("lpips").display()));
            continue;
        }
        cases.push(Case::new(format!("LPIPS {} resize {resize:?}", net.name()), vec![images(23), images(24)], 1e-4, move |t, dev| {
            Lpips::load_default(net, resize, DType::F32, dev).expect("LPIPS weights").forward(&t[0], &t[1]).expect("LPIPS")
        }));
    }
    (cases, missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::parity::portable_disagreements;

    #[test]
    fn the_networks_on_the_portable_kernels_equal_them_on_the_cpu_kernels() {
        let (cases, missing) = network_cases();
        // scripts/setup.sh fetches VGG16's weights; the suite always has both backbones
        assert!(missing.is_empty(), "LPIPS weights missing (run scripts/setup.sh): {missing:?}");
        let bad = portable_disagreements(&cases);
        assert!(bad.is_empty(), "portable kernels differ from the CPU kernels:\n  {}", bad.join("\n  "));
    }
}
