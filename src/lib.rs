//! # smrt — Synthetic Minority Reconstruction Technique
//!
//! Repairs class imbalance in tabular data: for each class that needs rows, a small variational
//! auto-encoder (VAE) is trained on that class's rows, and synthetic rows are drawn from it until
//! the class reaches the size asked for.
//!
//! - [`Smrt`]: the balancer (`fit_resample`), configured with a builder.
//! - [`Vae`]: one fitted model (fit, encode, decode, reconstruct, generate).
//! - [`Strategy`]: how many rows each class should have.
//! - [`Backend`] / [`Device`]: where to compute. A hardware GPU is used when there is one
//!   ([`engine::GpuEngine`]: hand-written WGSL kernels run through wgpu), else the CPU engine
//!   ([`engine::CpuEngine`]).
//! - [`engine`]: the kernels the one training loop is written against.
//!
//! All randomness comes from one counter-based generator ([`rng`], Philox4x32-10): the same seed
//! gives bit-identical output.
//!
//! ```
//! use ndarray::Array2;
//! use smrt::Smrt;
//!
//! let x = Array2::from_shape_fn((50, 3), |(i, j)| ((i * 13 + j * 7) % 17) as f32);
//! let y: Vec<u8> = (0..50).map(|i| u8::from(i >= 40)).collect(); // 40 vs 10
//! let out = Smrt::builder().epochs(20).build()?.fit_resample(x.view(), &y)?;
//! assert_eq!(out.class_counts()[&1], 40);
//! assert_eq!(out.synthetic_count(), 30);
//! # Ok::<(), smrt::Error>(())
//! ```

#![warn(missing_docs)]

pub mod balance;
mod check;
pub mod data;
pub mod engine;
mod error;
pub mod interrupt;
pub mod knn;
pub mod models;
mod origin;
mod parallel;
pub mod report;
pub mod rng;
pub mod scale;
pub mod shard;
mod strategy;
pub mod table;
pub mod vae;

pub use balance::{
    Balancer, Categories, Origin, RandomOverSampler, RandomUnderSampler, Resampled, Smote, Smrt,
    SmrtBuilder,
};
pub use engine::{Backend, Device};
pub use error::{Error, Result};
pub use scale::{Scaler, Scaling};
pub use strategy::{Label, Strategy};
pub use vae::{
    Activation, BiasInit, CategoryDraw, EarlyStopping, EpochStats, FitJob, Generation, History,
    Init, Latent, Likelihood, Optimizer, Sampling, Vae, VaeConfig,
};

/// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
