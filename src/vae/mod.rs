//! The variational auto-encoder: settings, model, the one training loop, generation.

mod columns;
mod config;
mod generate;
mod heads;
mod many;
mod model;
mod network;
mod persist;
mod relations;
mod train;

pub use columns::{two_valued_columns, ColumnStats, Columns, PointMass};
pub use config::{
    Activation, BiasInit, CategoryDraw, EarlyStopping, Generation, Init, Latent, Likelihood,
    Optimizer, Sampling, VaeConfig,
};
pub use generate::Drawer;
pub use heads::Heads;
pub use many::FitJob;
pub(crate) use model::no_codes;
pub use model::{Dense, Vae};
pub use persist::{model_files, ModelInfo, MODEL_VERSION, OLDEST_MODEL_VERSION};
pub(crate) use persist::{reads_version, versions_read};
pub use relations::Relations;
pub use train::{EpochObserver, EpochStats, History};
