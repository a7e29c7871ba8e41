//! Which device a command runs its networks on: `--device cpu|cuda:N`, by default
//! `$AYT_DEVICE`, else the CPU. A CUDA device on a build without the `cuda` feature is one clear
//! error naming the feature, never a fallback to the CPU.

use candle_core::Device;

use crate::{Error, Result};

pub const DEVICE_ENV: &str = "AYT_DEVICE";

/// Whether this build can run on CUDA devices.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// `cpu`, `cuda` (device 0) or `cuda:N`.
pub fn parse(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.strip_prefix("cuda") {
        Some("") => 0,
        Some(n) => n
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Error::msg(format!("--device {spec}: expected cpu or cuda:N (N a device number)")))?,
        None => return Err(Error::msg(format!("--device {spec}: expected cpu or cuda:N"))),
    };
    if !CUDA_BUILT {
        return Err(Error::msg(format!(
            "--device {spec}: this ayt was built without the `cuda` feature; build it with `cargo build --release --features cuda` (docs/gpu.md)"
        )));
    }
    let dev = Device::new_cuda(ordinal).map_err(|e| Error::msg(format!("--device {spec}: cannot open CUDA device {ordinal}: {e}")))?;
    crate::device_memory::keep_freed_memory(&dev)?;
    Ok(dev)
}

/// The device `$AYT_DEVICE` names, else the CPU: for `ayt` alone, which takes no `--device`.
pub fn from_env() -> Result<Device> {
    parse(&std::env::var(DEVICE_ENV).unwrap_or_else(|_| "cpu".into()))
}

/// `cpu` or `cuda:N`, as `--device` takes it.
pub fn name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_and_bad_names_say_what_is_expected() {
        assert!(parse("cpu").unwrap().is_cpu());
        assert_eq!(name(&parse(" cpu ").unwrap()), "cpu");
        for bad in ["gpu", "cuda:x", "cuda0", "cuda:-1", ""] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu or cuda:N"), "{bad}: {e}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_the_feature() {
        for spec in ["cuda", "cuda:0", "cuda:3"] {
            let e = parse(spec).unwrap_err().to_string();
            assert!(e.contains("`cuda` feature") && e.contains("--features cuda") && e.contains(spec), "{e}");
        }
    }
}
