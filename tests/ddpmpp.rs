//! EDM's DDPM++ (`model.arch = "ddpmpp"`) against the PyTorch version in
//! scripts/ddpmpp_reference.py: its EDM-format snapshot (tests/data/ddpmpp_tiny_edm.pkl, random
//! weights) goes through scripts/convert_edm_checkpoint.py, and the converted network's output on
//! fixed inputs equals PyTorch's (tests/data/ddpmpp_reference.h5) to 1e-5.

mod common;
use common::missing_tool;

use std::path::{Path, PathBuf};
use std::process::Command;

use ayt::model::songunet::{DdpmppConfig, SongUNet};
use ayt::nn::{Ctx, ParamBuilder};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn convert(out: &Path) -> Option<String> {
    if !common::python_imports("numpy") {
        missing_tool("python3 with numpy");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/convert_edm_checkpoint.py");
    let o = Command::new("python3").arg(script).arg(data("ddpmpp_tiny_edm.pkl")).arg(out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(String::from_utf8_lossy(&o.stdout).to_string())
}

#[test]
fn a_converted_edm_snapshot_computes_what_pytorch_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.safetensors");
    let Some(printed) = convert(&out) else { return };
    // the converter prints the [model.ddpmpp] table the weights fit
    assert!(
        printed.contains("model_channels = 8") && printed.contains("channel_mult = [1, 2]") && printed.contains("attn_levels = [1]"),
        "{printed}"
    );
    let cfg = DdpmppConfig { model_channels: 8, channel_mult: vec![1, 2], channel_mult_emb: 4, num_blocks: 1, attn_levels: vec![1] };
    let vm = VarMap::new();
    let pb = ParamBuilder::new(&vm, ayt::rng::stream(0, "init"), &Device::Cpu, DType::F32);
    let net = SongUNet::new(&pb, &cfg, 0.0, 3).unwrap();
    let tensors = ayt::train::checkpoint::load_tensors(&out).unwrap();
    ayt::train::load_into_varmap(&vm, &tensors, "ema.", &out).unwrap();

    let file = hdf5::File::open(data("ddpmpp_reference.h5")).unwrap();
    let read = |name: &str| file.dataset(name).unwrap().read_raw::<f32>().unwrap();
    let x = Tensor::from_vec(read("x"), (2, 3, 16, 16), &Device::Cpu).unwrap();
    let c_noise = Tensor::from_vec(read("c_noise"), 2, &Device::Cpu).unwrap();
    let want = read("y");
    let got = net.forward(&x, &c_noise, &Ctx::eval()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
    eprintln!("ddpmpp parity: max |ayt - torch| / max |torch| = {err:.2e} over {} values", want.len());
    assert!(err < 1e-5, "max error {err:e} relative to max |y| = {scale}");
}

#[test]
fn a_file_that_is_not_a_snapshot_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pkl");
    std::fs::write(&bad, b"\x80\x04cos\nsystem\n(S'echo hi'\ntR.").unwrap();
    if !common::python_imports("numpy") {
        return missing_tool("python3 with numpy");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/convert_edm_checkpoint.py");
    let o = Command::new("python3").arg(script).arg(&bad).arg(dir.path().join("out.safetensors")).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("bad.pkl") && err.contains("refusing os.system"), "{err}");
    assert!(!dir.path().join("out.safetensors").exists(), "nothing is written");
}
