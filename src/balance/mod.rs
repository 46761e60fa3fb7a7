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

/// `f` over `items` on up to one thread per core; results in the order of `items`.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results
                    .lock()
                    .expect("no worker panics while holding the lock")[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}
