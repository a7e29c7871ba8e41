use super::*;
use crate::nn::gradcheck;
use candle_core::{DType, Device};
use candle_nn::VarMap;

fn tiny() -> DdpmppConfig {
    DdpmppConfig { model_channels: 8, channel_mult: vec![1, 2], channel_mult_emb: 2, num_blocks: 1, attn_levels: vec![1] }
}

/// EDM's CIFAR-10 DDPM++ has 55,733,891 parameters, 1,152 of them in `map_augment` (left out
/// here); counted from the PyTorch version by scripts/ddpmpp_reference.py.
#[test]
fn the_cifar10_configuration_has_edms_parameter_count() {
    let vm = VarMap::new();
    let pb = ParamBuilder::new(&vm, crate::rng::stream(0, "init"), &Device::Cpu, DType::F32);
    SongUNet::new(&pb, &DdpmppConfig::default(), 0.13, 3).unwrap();
    let n: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(n, 55_732_739);
}

#[test]
fn output_shape_and_input_gradient() {
    let vm = VarMap::new();
    let pb = ParamBuilder::new(&vm, crate::rng::stream(1, "init"), &Device::Cpu, DType::F64);
    let net = SongUNet::new(&pb, &tiny(), 0.0, 3).unwrap();
    // every weight drawn: EDM's near-zero init of conv1, proj and the output conv hides paths
    for (i, var) in vm.all_vars().iter().enumerate() {
        let t = gradcheck::tests::randn(var.dims(), 100 + i as u64);
        var.set(&(t * 0.3).unwrap()).unwrap();
    }
    let x = gradcheck::tests::randn(&[2, 3, 8, 8], 3);
    let c = Tensor::new(&[0.1f64, -0.7], &Device::Cpu).unwrap();
    let y = net.forward(&x, &c, &Ctx::eval()).unwrap();
    assert_eq!(y.dims(), &[2, 3, 8, 8]);
    let g = gradcheck::check(&|ts: &[Tensor]| net.forward(&ts[0], &c, &Ctx::eval()), &[x], 12, 1e-5, 4).unwrap();
    assert!(g.probes > 0 && g.max_err < 1e-6, "SongUNet input gradient error {}", g.max_err);
}

#[test]
fn bad_sizes_are_refused_by_key() {
    let e = DdpmppConfig { attn_levels: vec![3], ..tiny() }.validate().unwrap_err();
    assert!(e.contains("model.ddpmpp.attn_levels") && e.contains("level 3"), "{e}");
    let e = DdpmppConfig { model_channels: 6, ..tiny() }.validate().unwrap_err();
    assert!(e.contains("model.ddpmpp.model_channels = 6"), "{e}");
    let e = tiny().check_image_size(9).unwrap_err();
    assert!(e.contains("divisible by 2"), "{e}");
    // each arch refuses the other's sizes: they would do nothing
    use crate::model::{UNetArch, UNetConfig};
    let ddpmpp = UNetConfig { arch: UNetArch::Ddpmpp, ..UNetConfig::default() };
    assert!(ddpmpp.validate().is_ok());
    let e = UNetConfig { channels: vec![8, 16], ..ddpmpp.clone() }.validate().unwrap_err();
    assert!(e.contains("model.channels is not used by model.arch = \"ddpmpp\""), "{e}");
    let e = UNetConfig { ddpmpp: tiny(), ..UNetConfig::default() }.validate().unwrap_err();
    assert!(e.contains("[model.ddpmpp] is used only by model.arch = \"ddpmpp\""), "{e}");
}
