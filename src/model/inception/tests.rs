use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};

use super::*;

/// torchvision's `inception_v3` has 27,161,264 parameters; without AuxLogits (3,326,696) and fc
/// (2,049,000) the convs and batch-norm affines hold 21,785,568. An independent check of the
/// architecture table.
#[test]
fn the_architecture_has_torchvisions_parameter_count() {
    let learnable: usize =
        required_keys().iter().filter(|(k, _)| !k.contains("running_")).map(|(_, shape)| shape.iter().product::<usize>()).sum();
    assert_eq!(learnable, 21_785_568);
    assert_eq!(conv_specs().len(), 94);
}

/// Random weights for every key (He-scaled convs, batch norms near identity), fixed seed.
fn random_weights(seed: u64) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    use rand::Rng;
    let mut rng = crate::rng::stream(seed, "inception-test");
    required_keys()
        .into_iter()
        .map(|(key, shape)| {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = if key.ends_with("conv.weight") {
                let fan_in = (shape[1] * shape[2] * shape[3]) as f32;
                crate::rng::normal_vec(&mut rng, n).into_iter().map(|v| v * (2.0 / fan_in).sqrt()).collect()
            } else if key.ends_with("running_var") {
                (0..n).map(|_| 0.5 + rng.random::<f32>()).collect()
            } else if key.ends_with("bn.weight") {
                (0..n).map(|_| 0.8 + 0.4 * rng.random::<f32>()).collect()
            } else {
                crate::rng::normal_vec(&mut rng, n).into_iter().map(|v| 0.1 * v).collect()
            };
            (key, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect()
}

fn write(path: &Path, weights: &[(String, Vec<usize>, Vec<u8>)], skip: Option<&str>, meta: Option<HashMap<String, String>>) {
    let views: Vec<(String, TensorView)> = weights
        .iter()
        .filter(|(k, _, _)| Some(k.as_str()) != skip)
        .map(|(k, shape, bytes)| (k.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, meta, path).unwrap();
}

#[test]
fn random_weights_give_finite_2048_d_features_and_bad_files_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let weights = random_weights(7);
    let good = dir.path().join("inception.safetensors");
    write(&good, &weights, None, None);
    let net = InceptionV3::load(&good, &Device::Cpu).unwrap();
    assert!(net.transform_input, "torchvision's default for its pretrained weights");
    // two different 28x28 grey images
    let a: Vec<f32> = (0..784).map(|i| ((i % 28) as f32 / 14.0) - 1.0).collect();
    let b: Vec<f32> = (0..784).map(|i| ((i / 28) as f32 / 14.0) - 1.0).collect();
    let x = Tensor::from_vec([a, b].concat(), (2, 1, 28, 28), &Device::Cpu).unwrap();
    let (f, d) = net.features_of(&x).unwrap();
    assert_eq!((d, f.len()), (FEATURE_DIM, 2 * FEATURE_DIM));
    assert!(f.iter().all(|v| v.is_finite() && *v >= 0.0), "pooled ReLU outputs are finite and >= 0");
    let diff: f32 = f[..d].iter().zip(&f[d..]).map(|(p, q)| (p - q).abs()).sum();
    assert!(diff > 1e-3, "different images must give different features");

    // one key missing: the error names the file and that key
    let key = "Mixed_6c.branch7x7dbl_3.bn.running_var";
    let missing = dir.path().join("missing.safetensors");
    write(&missing, &weights, Some(key), None);
    let e = InceptionV3::load(&missing, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("missing.safetensors") && e.contains(key), "{e}");
    drop(std::fs::remove_file(&missing));

    // a wrong shape and a bad metadata value: named too
    let mut wrong = vec![weights[0].clone()];
    wrong[0].1 = vec![32, 3, 5, 5];
    wrong[0].2 = vec![0; 32 * 3 * 25 * 4];
    let path = dir.path().join("wrong.safetensors");
    write(&path, &wrong, None, None);
    let e = InceptionV3::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("wrong.safetensors") && e.contains("Conv2d_1a_3x3.conv.weight") && e.contains("[32, 3, 3, 3]"), "{e}");
    write(&path, &wrong, None, Some(HashMap::from([(TRANSFORM_INPUT_KEY.to_string(), "maybe".to_string())])));
    let e = InceptionV3::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("wrong.safetensors") && e.contains(TRANSFORM_INPUT_KEY), "{e}");
    write(&path, &wrong, None, Some(HashMap::from([(VARIANT_KEY.to_string(), "tf2017".to_string())])));
    let e = InceptionV3::load(&path, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("wrong.safetensors") && e.contains("variant = \"tf2017\""), "{e}");
    let e = InceptionV3::load(&dir.path().join("absent.safetensors"), &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("absent.safetensors"), "{e}");
}

/// With `transform_input`, ImageNet normalisation followed by torchvision's transform maps
/// [-1, 1] images back to [-1, 1]; without it the input is ImageNet-normalised.
#[test]
fn preprocessing_follows_torchvision() {
    let mut net =
        InceptionV3 { stem: Vec::new(), blocks: Vec::new(), variant: Variant::Torchvision, transform_input: true, path: PathBuf::new() };
    let x = Tensor::from_vec(vec![-1.0f32, 0.0, 0.5, 1.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
    let y = net.preprocess(&x).unwrap();
    assert_eq!(y.dims(), &[1, 3, INPUT_SIZE, INPUT_SIZE]);
    let resized = resize_bilinear(&x.repeat((1, 3, 1, 1)).unwrap(), INPUT_SIZE, INPUT_SIZE).unwrap();
    let err = (&y - &resized).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(err < 1e-5, "{err}");
    net.transform_input = false;
    let y = net.preprocess(&x).unwrap();
    // the top-left output pixel is the input's -1 (black): (0 - mean) / std per channel
    let v = y.flatten_from(2).unwrap().narrow(2, 0, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for ch in 0..3 {
        assert!((v[ch] as f64 + IMAGENET_MEAN[ch] / IMAGENET_STD[ch]).abs() < 1e-5, "{v:?}");
    }
}
