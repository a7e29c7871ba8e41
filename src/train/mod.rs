//! Training: the EDM and ECT objectives, losses, schedules, the optimiser, EMA of the weights,
//! checkpoints, the trainer that steps them, and the step's reads to the host.

pub mod checkpoint;
pub mod ect;
pub mod edm;
pub mod ema;
#[cfg(test)]
mod ema_profile_tests;
pub mod loss;
pub mod optim;
pub mod pack;
#[cfg(test)]
mod precision_tests;
pub mod readback;
pub mod schedule;
pub mod tangent;
pub mod trainer;

pub use checkpoint::{load, load_into_varmap, load_path, save, vars_to_named, TrainState};
pub use ema::Ema;
pub use optim::{RAdam, RAdamConfig};
pub use readback::{Checked, StepStats};
pub use trainer::Trainer;
