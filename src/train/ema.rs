//! Exponential moving average of the weights: `ema = decay * ema + (1 - decay) * var`, per step.

use candle_core::Var;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    /// Weight of the old average, in `[0, 1]` (ECT default 0.9999).
    pub decay: f64,
}

impl Default for Ema {
    fn default() -> Self {
        Self { decay: 0.9999 }
    }
}

fn check_pairs(ema_vars: &[Var], vars: &[Var]) -> Result<()> {
    if ema_vars.len() != vars.len() {
        return Err(Error::msg(format!("EMA: {} averaged variables for {} model variables", ema_vars.len(), vars.len())));
    }
    for (i, (e, v)) in ema_vars.iter().zip(vars).enumerate() {
        if e.shape() != v.shape() {
            return Err(Error::msg(format!("EMA: variable {i} has shape {:?}, its average {:?}", v.dims(), e.dims())));
        }
    }
    Ok(())
}

/// Pairs the variables of two var maps by name (sorted), every name present in both.
fn pair_varmaps(ema: &VarMap, model: &VarMap) -> Result<(Vec<Var>, Vec<Var>)> {
    let e = ema.data().lock().unwrap_or_else(|p| p.into_inner());
    let m = model.data().lock().unwrap_or_else(|p| p.into_inner());
    let mut names: Vec<&String> = m.keys().collect();
    names.sort();
    if e.len() != m.len() {
        return Err(Error::msg(format!("EMA: {} averaged variables for {} model variables", e.len(), m.len())));
    }
    let mut ev = Vec::with_capacity(names.len());
    let mut mv = Vec::with_capacity(names.len());
    for name in names {
        let ema_var = e.get(name).ok_or_else(|| Error::msg(format!("EMA: no averaged variable `{name}`")))?;
        let model_var = &m[name];
        if ema_var.shape() != model_var.shape() {
            return Err(Error::msg(format!("EMA: variable `{name}` has shape {:?}, its average {:?}", model_var.dims(), ema_var.dims())));
        }
        ev.push(ema_var.clone());
        mv.push(model_var.clone());
    }
    Ok((ev, mv))
}

impl Ema {
    pub fn new(decay: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(Error::msg(format!("EMA: decay {decay} is not in [0, 1]")));
        }
        Ok(Self { decay })
    }

    /// `ema = decay * ema + (1 - decay) * var`, in place, for each pair. Lengths and shapes are
    /// checked before anything is written.
    pub fn update(&self, ema_vars: &[Var], vars: &[Var]) -> Result<()> {
        check_pairs(ema_vars, vars)?;
        for (e, v) in ema_vars.iter().zip(vars) {
            let v = v.as_tensor().to_dtype(e.dtype())?;
            let new = (e.as_tensor().affine(self.decay, 0.0)? + v.affine(1.0 - self.decay, 0.0)?)?;
            e.set(&new)?;
        }
        Ok(())
    }

    /// [`Ema::update`] over two var maps, pairing variables by name.
    pub fn update_varmap(&self, ema: &VarMap, model: &VarMap) -> Result<()> {
        let (e, m) = pair_varmaps(ema, model)?;
        self.update(&e, &m)
    }
}

/// Where a checkpoint keeps an EMA profile's weights: the default profile (the first) under
/// `ema.`, so readers and checkpoints from before profiles agree on it; any other under
/// `ema[<name>].` (a name has no `.`, `[` or `]`, so no two prefixes overlap).
pub fn tensor_prefix(name: &str, is_default: bool) -> String {
    if is_default {
        "ema.".to_string()
    } else {
        format!("ema[{name}].")
    }
}

/// `ema = var` for each pair (e.g. to start the average from the current weights).
pub fn copy_from(ema_vars: &[Var], vars: &[Var]) -> Result<()> {
    check_pairs(ema_vars, vars)?;
    for (e, v) in ema_vars.iter().zip(vars) {
        // A copy, so that setting a variable from itself (same storage) is allowed too.
        let src = v.as_tensor().to_dtype(e.dtype())?.copy()?;
        e.set(&src)?;
    }
    Ok(())
}

/// [`copy_from`] over two var maps, pairing variables by name.
pub fn copy_varmap(ema: &VarMap, model: &VarMap) -> Result<()> {
    let (e, m) = pair_varmaps(ema, model)?;
    copy_from(&e, &m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    fn var(x: &[f32]) -> Var {
        Var::new(x, &Device::Cpu).unwrap()
    }

    fn v(x: &Var) -> Vec<f32> {
        x.as_tensor().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn update_known_numbers() {
        let ema = Ema::new(0.9).unwrap();
        let e = [var(&[1.0, 2.0]), var(&[0.0])];
        let m = [var(&[3.0, -2.0]), var(&[10.0])];
        ema.update(&e, &m).unwrap();
        // 0.9*1 + 0.1*3 = 1.2; 0.9*2 + 0.1*(-2) = 1.6; 0.1*10 = 1
        let close = |a: Vec<f32>, b: &[f32]| assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6), "{a:?} vs {b:?}");
        close(v(&e[0]), &[1.2, 1.6]);
        close(v(&e[1]), &[1.0]);
        ema.update(&e, &m).unwrap();
        // 0.9*1.2 + 0.3 = 1.38; 0.9*1.6 - 0.2 = 1.24; 0.9 + 1 = 1.9
        close(v(&e[0]), &[1.38, 1.24]);
        close(v(&e[1]), &[1.9]);
        assert_eq!(v(&m[0]), vec![3.0, -2.0], "model untouched");
    }

    #[test]
    fn decay_one_and_zero() {
        let e = [var(&[1.0, 2.0])];
        let m = [var(&[5.0, 6.0])];
        Ema::new(1.0).unwrap().update(&e, &m).unwrap();
        assert_eq!(v(&e[0]), vec![1.0, 2.0]);
        Ema::new(0.0).unwrap().update(&e, &m).unwrap();
        assert_eq!(v(&e[0]), vec![5.0, 6.0]);
        assert!(Ema::new(1.5).is_err());
        assert!(Ema::new(f64::NAN).is_err());
    }

    #[test]
    fn profile_prefixes() {
        assert_eq!(tensor_prefix("ema", true), "ema.");
        assert_eq!(tensor_prefix("fast", true), "ema.");
        assert_eq!(tensor_prefix("slow", false), "ema[slow].");
        assert!(!tensor_prefix("a", false).starts_with(&tensor_prefix("a_b", false)));
        assert!(!tensor_prefix("a_b", false).starts_with(&tensor_prefix("a", false)));
    }

    #[test]
    fn shapes_and_lengths_checked() {
        let ema = Ema::default();
        let e = [var(&[1.0, 2.0])];
        assert!(ema.update(&e, &[var(&[1.0])]).is_err());
        assert!(ema.update(&e, &[]).is_err());
        assert!(copy_from(&e, &[var(&[1.0, 2.0, 3.0])]).is_err());
        assert_eq!(v(&e[0]), vec![1.0, 2.0]);
    }

    #[test]
    fn copy_and_varmaps() {
        let model = VarMap::new();
        let ema_map = VarMap::new();
        let dev = Device::Cpu;
        let init = candle_nn::Init::Const(2.0);
        model.get((2,), "a.w", init, DType::F32, &dev).unwrap();
        model.get((1,), "b", candle_nn::Init::Const(4.0), DType::F32, &dev).unwrap();
        ema_map.get((2,), "a.w", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        ema_map.get((1,), "b", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        copy_varmap(&ema_map, &model).unwrap();
        let get = |vm: &VarMap, n: &str| -> Vec<f32> { vm.data().lock().unwrap()[n].as_tensor().to_vec1::<f32>().unwrap() };
        assert_eq!(get(&ema_map, "a.w"), vec![2.0, 2.0]);
        assert_eq!(get(&ema_map, "b"), vec![4.0]);
        model.data().lock().unwrap()["b"].set(&Tensor::new(&[8.0f32], &dev).unwrap()).unwrap();
        Ema::new(0.5).unwrap().update_varmap(&ema_map, &model).unwrap();
        assert_eq!(get(&ema_map, "b"), vec![6.0]);
        assert_eq!(get(&ema_map, "a.w"), vec![2.0, 2.0]);

        let other = VarMap::new();
        other.get((2,), "a.w", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        other.get((1,), "c", candle_nn::Init::Const(0.0), DType::F32, &dev).unwrap();
        let e = Ema::default().update_varmap(&other, &model).unwrap_err().to_string();
        assert!(e.contains("`b`"), "{e}");
        // Copying a variable from itself works.
        let x = var(&[1.0]);
        copy_from(std::slice::from_ref(&x), std::slice::from_ref(&x)).unwrap();
    }
}
