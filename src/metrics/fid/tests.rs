//! Parity with the detector's own TorchScript file, run with torch on the CPU by
//! `scripts/fid_reference.py` (tests/data/fid_reference.h5): features of fixed images to 1e-4
//! relative, and the FID between two fixed sets to 1e-3 relative. Needs the detector, which
//! `scripts/setup.sh` makes (`scripts/fetch_fid_inception.py`).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::*;
use crate::data::ImageSet;
use crate::metrics::fd::frechet_distance;

struct Reference {
    file: hdf5::File,
}

impl Reference {
    fn open() -> Reference {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fid_reference.h5");
        Reference { file: hdf5::File::open(&path).unwrap() }
    }

    /// The set's images as f32 NCHW in [-1, 1], the store's conversion.
    fn images(&self, set: &str) -> Tensor {
        let a = self.file.dataset(&format!("images_{set}")).unwrap().read_dyn::<u8>().unwrap();
        let (n, h, w, c) = (a.shape()[0], a.shape()[1], a.shape()[2], a.shape()[3]);
        let set = ImageSet::new(a.iter().copied().collect(), (n, h, w, c), None, "fid reference").unwrap();
        let idx: Vec<usize> = (0..n).collect();
        Tensor::from_vec(set.batch_f32_nchw(&idx), (n, c, h, w), &Device::Cpu).unwrap()
    }

    fn features(&self, set: &str) -> Vec<f32> {
        self.file.dataset(&format!("features_{set}")).unwrap().read_raw::<f32>().unwrap()
    }
}

fn detector() -> InceptionV3 {
    load_detector(&default_detector_path(), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}\n(the FID parity tests need the detector: run scripts/setup.sh)"))
}

#[test]
fn features_and_fid_match_the_torchscript_detector() {
    let (net, reference) = (detector(), Reference::open());
    let d = crate::model::inception::FEATURE_DIM;
    let (mut moments, mut worst) = (Vec::new(), 0f64);
    for set in ["a", "b"] {
        let images = reference.images(set);
        let (features, dim) = net.features_of(&images).unwrap();
        assert_eq!(dim, d);
        let want = reference.features(set);
        // each kept image's feature vector, relative to its norm
        for (i, (got, want)) in features.chunks(d).zip(want.chunks(d)).enumerate() {
            let err = got.iter().zip(want).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
            let norm = want.iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
            assert!(err / norm < 1e-4, "set {set} image {i}: relative error {:e}", err / norm);
            worst = worst.max(err / norm);
        }
        let mut m = Moments::new(d);
        m.add(&features);
        moments.push(m.gaussian().unwrap());
    }
    let fid = frechet_distance(&moments[0], &moments[1]).unwrap();
    let want: f64 = reference.file.attr("fid").unwrap().read_scalar().unwrap();
    eprintln!("FID parity: features within {worst:.2e} relative; FID {fid:.6} vs TorchScript's {want:.6}");
    assert!(((fid - want) / want).abs() < 1e-3, "FID {fid} vs the TorchScript features' {want}");
}

#[test]
fn moments_give_the_mean_and_unbiased_covariance() {
    let rows = [1.0f32, 2.0, 3.0, 5.0, 5.0, 11.0];
    let mut m = Moments::new(2);
    m.add(&rows[..2]);
    m.add(&rows[2..]);
    let g = m.gaussian().unwrap();
    let direct = Gaussian::fit(&rows, 2).unwrap();
    assert_eq!(g.n, 3);
    assert!((g.mean.clone() - direct.mean).norm() < 1e-12);
    assert!((g.cov.clone() - direct.cov).norm() < 1e-12, "{} vs {}", g.cov, Gaussian::fit(&rows, 2).unwrap().cov);
    assert!(Moments::new(2).gaussian().is_err());
}

#[test]
fn a_file_that_is_not_the_detector_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    std::fs::write(&path, b"not the detector").unwrap();
    let e = load_detector(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("other.safetensors") && e.contains("not the standard FID detector"), "{e}");
    let e = load_detector(&dir.path().join("absent.safetensors"), &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("absent.safetensors") && e.contains("fetch_fid_inception.py"), "{e}");
}
