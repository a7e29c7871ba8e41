//! Training: EDM pre-training and ECT consistency training, losses, schedules, the optimiser,
//! EMA of the weights, checkpoints.

pub mod checkpoint;
pub mod ema;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod tangent;
pub mod trainer;

pub use checkpoint::{latest, list, load, load_into_varmap, load_path, save, vars_to_named};
pub use ema::Ema;
pub use optim::{RAdam, RAdamConfig};
pub use trainer::{StepStats, TrainState, Trainer};
