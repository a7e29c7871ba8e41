//! The self-supervised feature network `phi` of the MFD loss: its preset, its training by
//! augmentation-label regression, and the HDF5 feature store that training runs find it in.

pub mod preset;
pub mod store;
pub mod train;

pub use preset::FeaturesPreset;
pub use store::{feature_file_name, find_feature, find_phi, load_phi, phi_path};
