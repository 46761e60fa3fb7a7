//! Random over-sampling (with an optional smoothed bootstrap) and random under-sampling.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2, Axis};

use super::{append, Balancer, Categories, Classes, Grown, Origin, Part, Resampled, Rows};
use crate::error::{Error, Result};
use crate::rng::{below, permutation, Purpose, Stream};
use crate::shard::Shard;
use crate::strategy::{Label, Strategy};

/// Grows classes by copying random rows of the class. With `shrinkage`, each copy gets Gaussian
/// noise (a smoothed bootstrap, as imbalanced-learn's): per feature, standard deviation
/// `shrinkage * std_j * (4 / ((d + 2) n))^(1 / (d + 4))`, with `std_j` the class's standard
/// deviation of feature `j`, `d` features and `n` rows in the class. The factor is one for every
/// class ([`RandomOverSampler::shrinkage`]) or one per class that grows
/// ([`RandomOverSampler::shrinkage_per_class`]).
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
    shrinkage: Option<Shrinkage<L>>,
    seed: u64,
}

/// The smoothed bootstrap's factor: one for every class, or one per class.
#[derive(Debug, Clone)]
enum Shrinkage<L> {
    All(f32),
    PerClass(BTreeMap<L, f32>),
}

impl<L: Label> Shrinkage<L> {
    /// Every factor is finite and >= 0, and a per-class map names only classes of `classes`.
    fn check(&self, classes: &Classes<'_, L>) -> Result<()> {
        let factors: Vec<f32> = match self {
            Shrinkage::All(s) => vec![*s],
            Shrinkage::PerClass(m) => m.values().copied().collect(),
        };
        if let Some(s) = factors.iter().find(|s| !(**s >= 0.0 && s.is_finite())) {
            return Err(Error::config("shrinkage", format!("{s} is not >= 0")));
        }
        if let Shrinkage::PerClass(m) = self {
            if let Some(unknown) = m.keys().find(|l| !classes.rows.contains_key(*l)) {
                return Err(Error::UnknownClass(format!("{unknown:?}")));
            }
        }
        Ok(())
    }

    /// The factor of `label`, a class that grows.
    fn of(&self, label: &L) -> Result<f32> {
        match self {
            Shrinkage::All(s) => Ok(*s),
            Shrinkage::PerClass(m) => m.get(label).copied().ok_or_else(|| {
                Error::config(
                    "shrinkage",
                    format!("class {label:?} has no shrinkage factor and grows; give one for every class that grows"),
                )
            }),
        }
    }
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
        self.shrinkage = Some(Shrinkage::All(shrinkage));
        self
    }

    /// A smoothed bootstrap with each class's own factor (imbalanced-learn's dict form). Every
    /// class that grows needs one; a class of the map that does not grow is left as it is.
    pub fn shrinkage_per_class(mut self, shrinkage: BTreeMap<L, f32>) -> Self {
        self.shrinkage = Some(Shrinkage::PerClass(shrinkage));
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
        self.oversample(x, y, Part::All)
    }

    fn fit_resample_mixed(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
    ) -> Result<Resampled<L>> {
        whole_rows(x, categories, |x| self.oversample(x, y, Part::All))
    }

    fn fit_synthetic(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
        shard: Shard,
    ) -> Result<Resampled<L>> {
        let part = Part::Synthetic(shard);
        whole_rows(x, categories, |x| self.oversample(x, y, part))
    }
}

impl<L: Label> RandomOverSampler<L> {
    fn oversample(&self, x: ArrayView2<'_, f32>, y: &[L], part: Part) -> Result<Resampled<L>> {
        let classes = Classes::of(x, y)?;
        if let Some(shrinkage) = &self.shrinkage {
            shrinkage.check(&classes)?;
        }
        let to_add = self.strategy.samples_to_add(&classes.counts())?;
        let d = x.ncols();
        let mut grown = Vec::new();
        let jobs = classes.jobs(&to_add, part);
        for job in jobs.iter().filter(|j| !j.slice.is_empty()) {
            let (label, rows, slice) = (job.label, job.rows, job.slice.clone());
            let class_x = x.select(Axis(0), rows);
            let stream = Stream::new(self.seed, Purpose::RandomOver, job.class_no as u32);
            // Copy `i` takes word `i` of the stream: four per block.
            let first = slice.start;
            let picks: Vec<u32> = (first as u64 / 4..slice.end.div_ceil(4) as u64)
                .flat_map(|b| stream.block(b))
                .skip(first % 4)
                .take(slice.len())
                .map(|w| below(w, rows.len() as u32))
                .collect();
            let factor = self.shrinkage.as_ref().map(|s| s.of(label)).transpose()?;
            let noise = factor.map(|s| {
                let m = rows.len() as f64;
                let smoothing = (4.0 / ((d as f64 + 2.0) * m)).powf(1.0 / (d as f64 + 4.0));
                class_x
                    .std_axis(Axis(0), 0.0)
                    .iter()
                    .map(|&sd| (f64::from(s) * smoothing * f64::from(sd)) as f32)
                    .collect()
            });
            let origin = picks
                .iter()
                .map(|&p| Origin::Synthetic {
                    source: Some(rows[p as usize]),
                })
                .collect();
            let copies = Copies {
                x: class_x,
                first,
                picks,
                noise,
                stream,
            };
            grown.push(Grown {
                label: label.clone(),
                x: copies,
                origin,
            });
        }
        Ok(append(x, y, grown, Default::default(), part))
    }
}

/// Over- and under-sampling keep whole rows: a copy's categories are its source row's. The rows
/// are chosen by `resample` on the numeric columns.
fn whole_rows<L: Label>(
    x: ArrayView2<'_, f32>,
    categories: Categories<'_>,
    resample: impl Fn(ArrayView2<'_, f32>) -> Result<Resampled<L>>,
) -> Result<Resampled<L>> {
    categories.check(x.nrows())?;
    if x.ncols() == 0 && categories.codes.ncols() > 0 {
        // Every column categorical: the rows are chosen alike on a placeholder column.
        let placeholder = Array2::zeros((x.nrows(), 1));
        let mut out = resample(placeholder.view())?;
        out.x = Array2::zeros((out.origin.len(), 0));
        out.codes = categories.follow(&out.origin, categories.codes);
        return Ok(out);
    }
    let mut out = resample(x)?;
    out.codes = categories.follow(&out.origin, categories.codes);
    Ok(out)
}

/// Copies of rows of one class, each with Gaussian noise where there is a scale, written
/// straight into the output.
struct Copies {
    /// The class's rows.
    x: Array2<f32>,
    /// The number of the first copy in the class's run (copies before it are another shard's).
    first: usize,
    /// The class row of each copy.
    picks: Vec<u32>,
    /// Standard deviation of the noise per feature.
    noise: Option<Vec<f32>>,
    /// Noise of copy `s`, feature `f`: element `2^40 + s d + f` (a range apart from the picks).
    stream: Stream,
}

impl Rows for Copies {
    fn count(&self) -> usize {
        self.picks.len()
    }

    fn write_row(&self, s: usize, out: &mut [f32]) {
        let pick = self.picks[s] as usize;
        let row = self.x.row(pick);
        match &self.noise {
            None => self.x.write_row(pick, out),
            Some(scale) => {
                let d = out.len();
                let copy = self.first + s;
                self.stream.fill_normal((1 << 40) + (copy * d) as u64, out);
                for ((o, &v), &sd) in out.iter_mut().zip(row).zip(scale) {
                    *o = v + *o * sd;
                }
            }
        }
    }
}

/// Shrinks classes by keeping a random subset of their rows (see [`Strategy::rows_to_keep`] for
/// how each strategy reads here: by default every class down to the minority count). The rows
/// kept stay in input order. With [`RandomUnderSampler::replacement`] a shrinking class's rows
/// are drawn with replacement (imbalanced-learn's `replacement=True`): a row may be kept twice.
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
    replacement: bool,
    seed: u64,
}

impl<L: Label> Default for RandomUnderSampler<L> {
    fn default() -> Self {
        RandomUnderSampler {
            strategy: Strategy::NotMajority,
            replacement: false,
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

    /// Draw the kept rows of a shrinking class with replacement (default: without).
    pub fn replacement(mut self, replacement: bool) -> Self {
        self.replacement = replacement;
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
                    if self.replacement {
                        let words = (0..n.div_ceil(4) as u64).flat_map(|b| stream.block(b));
                        let picks = words.take(n).map(|w| below(w, rows.len() as u32));
                        kept.extend(picks.map(|p| rows[p as usize]));
                    } else {
                        let order = permutation(&stream, rows.len());
                        kept.extend(order[..n].iter().map(|&p| rows[p as usize]));
                    }
                }
                None => kept.extend_from_slice(rows),
            }
        }
        kept.sort_unstable();
        Ok(Resampled {
            x: x.select(Axis(0), &kept),
            codes: Array2::zeros((kept.len(), 0)),
            y: kept.iter().map(|&i| y[i].clone()).collect(),
            origin: kept.iter().map(|&i| Origin::Real(i)).collect(),
            models: Default::default(),
        })
    }

    fn fit_resample_mixed(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
    ) -> Result<Resampled<L>> {
        whole_rows(x, categories, |x| self.fit_resample(x, y))
    }
}
