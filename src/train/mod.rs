//! Training: the EDM and ECT objectives, losses, schedules, the optimiser, EMA of the weights,
//! checkpoints, and the trainer that steps them.

pub mod checkpoint;
pub mod ect;
pub mod edm;
pub mod ema;
#[cfg(test)]
mod ema_profile_tests;
pub mod loss;
pub mod optim;
pub mod pack;
pub mod schedule;
pub mod tangent;
pub mod trainer;

pub use checkpoint::{load, load_into_varmap, load_path, save, vars_to_named, TrainState};
pub use ema::Ema;
pub use optim::{RAdam, RAdamConfig};
pub use trainer::{StepStats, Trainer};
