//! The loss factory: which frozen network a loss differentiates through, decided in one place
//! for training and for probes. L2 and pseudo-Huber need none; LPIPS is the `[lpips]` backbone;
//! MFD is the feature network `mfd.features`, trained on this run's data set.

use candle_core::{DType, Device};

use crate::config::{LossKind, MfdConfig, Mode, Preset};
use crate::model::lpips::{Lpips, LpipsConfig};
use crate::model::phi::MfdDistance;
use crate::model::FeatureDistance;
use crate::paths::Paths;
use crate::{Error, Result};

/// A probed loss: its name and its frozen distance (`None` for L2).
pub type NamedDistance = (String, Option<Box<dyn FeatureDistance>>);

fn lpips(cfg: &LpipsConfig, device: &Device) -> Result<Box<dyn FeatureDistance>> {
    Ok(Box::new(Lpips::from_config(cfg, DType::F32, device)?))
}

fn mfd(paths: &Paths, cfg: &MfdConfig, dataset_sha256: &str, device: &Device) -> Result<Box<dyn FeatureDistance>> {
    let phi = crate::features::load_phi(paths, &cfg.features, dataset_sha256, device)?.frozen();
    Ok(Box::new(MfdDistance { phi, eps: cfg.eps }))
}

/// The distance `train.loss` trains with (`None` for the pixel losses). `shape` is the images'
/// (C, H, W): LPIPS refuses images too small for its backbone, naming `lpips.resize`.
pub fn training_distance(
    preset: &Preset,
    paths: &Paths,
    dataset_sha256: &str,
    shape: (usize, usize, usize),
    device: &Device,
) -> Result<Option<Box<dyn FeatureDistance>>> {
    let (_, h, w) = shape;
    match (preset.train.mode, preset.train.loss) {
        (Mode::Ect, LossKind::Lpips) => {
            preset.lpips.check_image_size(h, w).map_err(Error::msg)?;
            Ok(Some(lpips(&preset.lpips, device)?))
        }
        (_, LossKind::Mfd) => Ok(Some(mfd(paths, &preset.mfd, dataset_sha256, device)?)),
        _ => Ok(None),
    }
}

/// The losses whose directions probes compare, whichever loss trains the run: L2 (`None`) and
/// LPIPS always, MFD where the preset names a feature network. Images too small for the LPIPS
/// backbone are resized to 64.
pub fn probe_distances(
    preset: &Preset,
    paths: &Paths,
    dataset_sha256: &str,
    shape: (usize, usize, usize),
    device: &Device,
) -> Result<Vec<NamedDistance>> {
    let mut losses: Vec<NamedDistance> = vec![("l2".into(), None)];
    if !preset.mfd.features.trim().is_empty() {
        losses.push(("mfd".into(), Some(mfd(paths, &preset.mfd, dataset_sha256, device)?)));
    }
    let (_, h, w) = shape;
    let mut cfg = preset.lpips.clone();
    if cfg.check_image_size(h, w).is_err() {
        cfg.resize = 64;
    }
    losses.push(("lpips".into(), Some(lpips(&cfg, device)?)));
    Ok(losses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::DataSource;
    use crate::model::lpips::LpipsNet;
    use crate::paths::RunDir;
    use crate::train::trainer::tests::tiny_preset;
    use crate::train::Trainer;

    #[test]
    fn ect_with_the_lpips_loss_trains_and_resumes_bit_for_bit() {
        let mut p = tiny_preset("ect", 4);
        p.data.disks.size = 16;
        p.train.loss = LossKind::Lpips;
        p.lpips = LpipsConfig { net: LpipsNet::Vgg, resize: 0 };
        let home = tempfile::tempdir().unwrap();
        let paths = Paths { home: home.path().to_path_buf() };
        let trainer = |p: &Preset| -> Result<Trainer> {
            let src = DataSource::disks(p.data.disks.clone(), p.seed)?;
            let distance = training_distance(p, &paths, "", src.shape(), &Device::Cpu)?;
            Trainer::new(p, src, distance, &Device::Cpu)
        };
        let mut a = trainer(&p).unwrap();
        let full: Vec<f64> = (0..3).map(|_| a.step().unwrap().loss).collect();
        assert!(full.iter().all(|l| l.is_finite()), "{full:?}");
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut b = trainer(&p).unwrap();
        b.step().unwrap();
        b.save_checkpoint(&run).unwrap();
        let mut c = trainer(&p).unwrap();
        c.restore(&run, 1).unwrap();
        let resumed: Vec<f64> = (0..2).map(|_| c.step().unwrap().loss).collect();
        assert_eq!(&full[1..], &resumed[..]);
        // AlexNet on 16x16 images without a resize is refused, naming the key
        p.lpips.net = LpipsNet::Alex;
        let e = trainer(&p).err().unwrap().to_string();
        assert!(e.contains("lpips.resize"), "{e}");
    }
}
