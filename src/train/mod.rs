//! Training: optimiser, EMA of the weights, checkpoints (loops to come).

pub mod checkpoint;
pub mod ema;
pub mod optim;

pub use checkpoint::{latest, list, load, load_into_varmap, load_path, save, vars_to_named};
pub use ema::Ema;
pub use optim::{RAdam, RAdamConfig};
