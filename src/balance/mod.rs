//! Balancers: take a labelled matrix, return it with synthetic rows added.

mod smrt;

pub use smrt::{Smrt, SmrtBuilder};

use std::collections::BTreeMap;

use ndarray::Array2;

use crate::vae::Vae;

/// Where an output row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Input row `i`, unchanged.
    Real(usize),
    /// A synthetic row; `source` is the input row it was drawn from, where there is one
    /// (posterior generation), and `None` for draws from the prior.
    Synthetic {
        /// Index of the input row it was generated from.
        source: Option<usize>,
    },
}

impl Origin {
    /// Whether the row is synthetic.
    pub fn is_synthetic(self) -> bool {
        matches!(self, Origin::Synthetic { .. })
    }
}

/// The result of balancing.
#[derive(Debug, Clone)]
pub struct Resampled<L> {
    /// The rows: the input rows first, unchanged and in order, then the synthetic rows (unless
    /// the balancer was asked to shuffle).
    pub x: Array2<f32>,
    /// The label of each row.
    pub y: Vec<L>,
    /// Where each row came from.
    pub origin: Vec<Origin>,
    /// The model of each class that received synthetic rows (trained or passed in).
    pub models: BTreeMap<L, Vae>,
}

impl<L: Ord> Resampled<L> {
    /// Number of synthetic rows.
    pub fn synthetic_count(&self) -> usize {
        self.origin.iter().filter(|o| o.is_synthetic()).count()
    }

    /// Row counts per class.
    pub fn class_counts(&self) -> BTreeMap<&L, usize> {
        let mut counts = BTreeMap::new();
        for l in &self.y {
            *counts.entry(l).or_default() += 1;
        }
        counts
    }
}
