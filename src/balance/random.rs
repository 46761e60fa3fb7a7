//! Random over-sampling (with an optional smoothed bootstrap) and random under-sampling.

use ndarray::{ArrayView2, Axis};

use super::{append, Balancer, Classes, Grown, Origin, Resampled};
use crate::error::{Error, Result};
use crate::rng::{permutation, Purpose, Stream};
use crate::strategy::{Label, Strategy};

/// Grows classes by copying random rows of the class. With `shrinkage`, each copy gets Gaussian
/// noise (a smoothed bootstrap, as imbalanced-learn's): per feature, standard deviation
/// `shrinkage * std_j * (4 / ((d + 2) n))^(1 / (d + 4))`, with `std_j` the class's standard
/// deviation of feature `j`, `d` features and `n` rows in the class.
///
/// ```
/// use smrt::{Balancer, RandomOverSampler};
/// let x = ndarray::Array2::from_shape_fn((12, 2), |(i, j)| (i + j) as f32);
/// let y: Vec<u8> = (0..12).map(|i| u8::from(i >= 9)).collect();
/// let out = RandomOverSampler::new().shrinkage(0.5).fit_resample(x.view(), &y)?;
/// assert_eq!(out.class_counts()[&1], 9);
/// # Ok::<(), smrt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RandomOverSampler<L> {
    strategy: Strategy<L>,
    shrinkage: Option<f32>,
    seed: u64,
}

impl<L: Label> Default for RandomOverSampler<L> {
    fn default() -> Self {
        RandomOverSampler {
            strategy: Strategy::NotMajority,
            shrinkage: None,
            seed: 0,
        }
    }
}

impl<L: Label> RandomOverSampler<L> {
    /// Plain duplication, [`Strategy::NotMajority`], seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rows each class should reach.
    pub fn strategy(mut self, strategy: Strategy<L>) -> Self {
        self.strategy = strategy;
        self
    }

    /// Noise on the copies (a smoothed bootstrap); `0` gives exact copies.
    pub fn shrinkage(mut self, shrinkage: f32) -> Self {
        self.shrinkage = Some(shrinkage);
        self
    }

    /// Seed of every random choice.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl<L: Label> Balancer<L> for RandomOverSampler<L> {
    fn fit_resample(&self, x: ArrayView2<'_, f32>, y: &[L]) -> Result<Resampled<L>> {
        if let Some(s) = self.shrinkage {
            if !(s >= 0.0 && s.is_finite()) {
                return Err(Error::config("shrinkage", format!("{s} is not >= 0")));
            }
        }
        let classes = Classes::of(x, y)?;
        let to_add = self.strategy.samples_to_add(&classes.counts())?;
        let d = x.ncols();
        let mut grown = Vec::new();
        for (class_no, (label, rows)) in classes.rows.iter().enumerate() {
            let Some(&n) = to_add.get(*label) else {
                continue;
            };
            let class_x = x.select(Axis(0), rows);
            let stream = Stream::new(self.seed, Purpose::RandomOver, class_no as u32);
            let picks: Vec<usize> = (0..n)
                .map(|i| stream.below_at(i as u64, rows.len() as u32) as usize)
                .collect();
            let mut new = class_x.select(Axis(0), &picks);
            if let Some(s) = self.shrinkage {
                let m = rows.len() as f64;
                let smoothing = (4.0 / ((d as f64 + 2.0) * m)).powf(1.0 / (d as f64 + 4.0));
                let scale: Vec<f32> = class_x
                    .std_axis(Axis(0), 0.0)
                    .iter()
                    .map(|&sd| (f64::from(s) * smoothing * f64::from(sd)) as f32)
                    .collect();
                // Noise from a second range of the stream: elements from 2^40 on.
                let mut noise = vec![0.0f32; n * d];
                stream.fill_normal(1 << 40, &mut noise);
                for (mut row, z) in new.rows_mut().into_iter().zip(noise.chunks_exact(d)) {
                    for ((v, &z), &sc) in row.iter_mut().zip(z).zip(&scale) {
                        *v += z * sc;
                    }
                }
            }
            grown.push(Grown {
                label: (*label).clone(),
                x: new,
                origin: picks
                    .iter()
                    .map(|&p| Origin::Synthetic {
                        source: Some(rows[p]),
                    })
                    .collect(),
            });
        }
        Ok(append(x, y, grown, Default::default()))
    }
}

/// Shrinks classes by keeping a random subset of their rows (see [`Strategy::rows_to_keep`] for
/// how each strategy reads here: by default every class down to the minority count). The rows
/// kept stay in input order.
///
/// ```
/// use smrt::{Balancer, RandomUnderSampler};
/// let x = ndarray::Array2::from_shape_fn((12, 2), |(i, j)| (i + j) as f32);
/// let y: Vec<u8> = (0..12).map(|i| u8::from(i >= 9)).collect();
/// let out = RandomUnderSampler::new().fit_resample(x.view(), &y)?;
/// assert_eq!(out.class_counts()[&0], 3);
/// assert_eq!(out.x.nrows(), 6);
/// # Ok::<(), smrt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RandomUnderSampler<L> {
    strategy: Strategy<L>,
    seed: u64,
}

impl<L: Label> Default for RandomUnderSampler<L> {
    fn default() -> Self {
        RandomUnderSampler {
            strategy: Strategy::NotMajority,
            seed: 0,
        }
    }
}

impl<L: Label> RandomUnderSampler<L> {
    /// Every class down to the minority count, seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which classes shrink, and to what size ([`Strategy::rows_to_keep`]).
    pub fn strategy(mut self, strategy: Strategy<L>) -> Self {
        self.strategy = strategy;
        self
    }

    /// Seed of the choice of rows.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl<L: Label> Balancer<L> for RandomUnderSampler<L> {
    fn fit_resample(&self, x: ArrayView2<'_, f32>, y: &[L]) -> Result<Resampled<L>> {
        let classes = Classes::of(x, y)?;
        let keep = self.strategy.rows_to_keep(&classes.counts())?;
        let mut kept = Vec::with_capacity(x.nrows());
        for (class_no, (label, rows)) in classes.rows.iter().enumerate() {
            match keep.get(*label) {
                Some(&n) => {
                    let stream = Stream::new(self.seed, Purpose::RandomUnder, class_no as u32);
                    let order = permutation(&stream, rows.len());
                    kept.extend(order[..n].iter().map(|&p| rows[p as usize]));
                }
                None => kept.extend_from_slice(rows),
            }
        }
        kept.sort_unstable();
        Ok(Resampled {
            x: x.select(Axis(0), &kept),
            y: kept.iter().map(|&i| y[i].clone()).collect(),
            origin: kept.iter().map(|&i| Origin::Real(i)).collect(),
            models: Default::default(),
        })
    }
}
