//! Time per ECT step of a preset with the L2 loss and with LPIPS (AlexNet at 64x64, VGG16 at
//! native size), on the same data and initial weights:
//! `cargo run --release --example lpips_cost -- presets/mnist-lpips.toml [steps] [--set k=v ...]`
//! (AYT_HOME must hold the data set and the `train.init` run).

use std::path::Path;
use std::time::Instant;

use ayt::config::Preset;
use ayt::model::lpips::{Lpips, LpipsNet};
use ayt::model::FeatureDistance;
use ayt::paths::Paths;
use ayt::train::tangent::unit_directions;
use ayt::train::Trainer;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let preset_path = Path::new(args.first().map(String::as_str).unwrap_or("presets/mnist-lpips.toml")).to_path_buf();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let sets: Vec<String> = args.iter().skip(2).filter(|a| a.contains('=')).cloned().collect();
    let paths = Paths::resolve(std::env::var_os("AYT_HOME").map(std::path::PathBuf::from));
    let configs: [(&str, &[&str]); 3] = [
        ("l2", &["train.loss=\"l2\""]),
        ("lpips alex r64", &["train.loss=\"lpips\"", "lpips.net=\"alex\"", "lpips.resize=64"]),
        ("lpips vgg native", &["train.loss=\"lpips\"", "lpips.net=\"vgg\"", "lpips.resize=0"]),
    ];
    // Steps interleaved round-robin (the machine is shared: compare minima and medians).
    let mut trainers = Vec::new();
    let directions_only = args.iter().any(|a| a == "--directions-only");
    for (name, extra) in configs {
        if directions_only && !trainers.is_empty() {
            break;
        }
        let mut o = sets.clone();
        o.extend(extra.iter().map(|s| s.to_string()));
        let preset = Preset::load(&preset_path, &o)?;
        let data = preset.open_data(&paths)?;
        let device = candle_core::Device::Cpu;
        let distance = ayt::engine::losses::training_distance(&preset, &paths, &data.sha256, data.source.shape(), &device)?;
        let mut trainer = Trainer::new(&preset, data.source, distance, &device)?;
        if let Some(init) = preset.resolve_init(preset_path.parent(), &paths.runs()) {
            trainer.init_from(&init)?;
        }
        trainer.step()?; // warm-up
        trainers.push((name, trainer, preset.train.batch_size, Vec::new()));
    }
    for _ in 0..if directions_only { 1 } else { steps } {
        for (_, trainer, _, times) in trainers.iter_mut() {
            let t0 = Instant::now();
            trainer.step()?;
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    // The LPIPS direction alone (forward of both images + input gradient) on a batch of outputs.
    let b = trainers[0].2;
    let (c, h, w) = trainers[0].1.shape();
    let x = candle_core::Tensor::randn(0f32, 0.5, (b, c, h, w), &candle_core::Device::Cpu)?.tanh()?;
    let y = candle_core::Tensor::randn(0f32, 0.5, (b, c, h, w), &candle_core::Device::Cpu)?.tanh()?;
    let mut dir_times = Vec::new();
    for (net, resize) in [(LpipsNet::Alex, Some(64)), (LpipsNet::Vgg, None)] {
        let lpips = Lpips::load_default(net, resize, candle_core::DType::F32, &candle_core::Device::Cpu)?;
        let (mut ts, mut both) = (Vec::new(), Vec::new());
        for _ in 0..steps {
            let t0 = Instant::now();
            unit_directions(&lpips, &x, &y)?;
            ts.push(t0.elapsed().as_secs_f64());
            // for comparison: a backward over both images (what one pass over the
            // concatenated pair costs)
            let (xv, yv) = (candle_core::Var::from_tensor(&x)?, candle_core::Var::from_tensor(&y)?);
            let t0 = Instant::now();
            lpips.forward(xv.as_tensor(), yv.as_tensor())?.sum_all()?.backward()?;
            both.push(t0.elapsed().as_secs_f64());
        }
        dir_times.push((FeatureDistance::name(&lpips), ts));
        dir_times.push((format!("{} (grad x and y)", FeatureDistance::name(&lpips)), both));
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[0], v[v.len() / 2])
    };
    let (l2_min, l2_med) = stats(&mut trainers[0].3.clone());
    for (name, _, batch, times) in trainers.iter_mut() {
        let (mn, med) = stats(times);
        println!(
            "ECT step, {name:<18} min {mn:7.3} s  median {med:7.3} s  ({:.2}x / {:.2}x l2)  batch {}",
            mn / l2_min,
            med / l2_med,
            batch
        );
    }
    for (name, mut ts) in dir_times {
        let (mn, med) = stats(&mut ts);
        println!("LPIPS direction only, {name:<28} min {mn:7.3} s  median {med:7.3} s  (batch {b})");
    }
    Ok(())
}
