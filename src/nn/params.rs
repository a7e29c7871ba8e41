//! Parameter creation from the run's own RNG (candle's CPU RNG cannot be seeded per run).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::Result;

/// Creates named parameters in a `VarMap`, initialised from a seeded generator.
pub struct ParamBuilder<'a> {
    map: &'a VarMap,
    prefix: String,
    rng: std::rc::Rc<std::cell::RefCell<ChaCha8Rng>>,
    pub device: Device,
    pub dtype: DType,
}

impl<'a> ParamBuilder<'a> {
    pub fn new(map: &'a VarMap, rng: ChaCha8Rng, device: &Device, dtype: DType) -> Self {
        ParamBuilder { map, prefix: String::new(), rng: std::rc::Rc::new(std::cell::RefCell::new(rng)), device: device.clone(), dtype }
    }

    /// A builder whose names are prefixed with `name.`.
    pub fn pp(&self, name: impl AsRef<str>) -> ParamBuilder<'a> {
        let prefix = if self.prefix.is_empty() { name.as_ref().to_string() } else { format!("{}.{}", self.prefix, name.as_ref()) };
        ParamBuilder { map: self.map, prefix, rng: self.rng.clone(), device: self.device.clone(), dtype: self.dtype }
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn insert(&self, name: &str, values: Vec<f64>, shape: &[usize]) -> Result<Tensor> {
        let t = Tensor::from_vec(values, shape, &self.device)?.to_dtype(self.dtype)?;
        let var = Var::from_tensor(&t)?;
        let full = self.full_name(name);
        let mut data = self.map.data().lock().map_err(|_| crate::Error::msg("parameter map lock poisoned"))?;
        if data.contains_key(&full) {
            return Err(crate::Error::msg(format!("parameter {full} defined twice")));
        }
        let tensor = var.as_tensor().clone();
        data.insert(full, var);
        Ok(tensor)
    }

    /// U(-bound, bound), as PyTorch's default init for conv and linear layers.
    pub fn uniform(&self, name: &str, shape: &[usize], bound: f64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let mut rng = self.rng.borrow_mut();
        let values = (0..n).map(|_| (rng.random::<f64>() * 2.0 - 1.0) * bound).collect();
        drop(rng);
        self.insert(name, values, shape)
    }

    pub fn constant(&self, name: &str, shape: &[usize], value: f64) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        self.insert(name, vec![value; n], shape)
    }
}
