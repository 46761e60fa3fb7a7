//! SMOTE (Chawla et al., 2002): synthetic rows on the segments between a row of a class and one
//! of its nearest neighbours in that class.

use std::ops::Range;
use std::sync::OnceLock;

use ndarray::{Array2, ArrayView2, Axis};

use super::smoten::{bases, nominal_neighbors, value_differences};
use super::{append, Balancer, Categories, Classes, Grown, Origin, Part, Resampled, Rows};
use crate::engine::{Backend, Device, KNN_MAX_K};
use crate::error::{Error, Result};
use crate::knn::nearest_neighbors;
use crate::rng::{below, Purpose, Stream};
use crate::shard::Shard;
use crate::strategy::{Label, Strategy};

/// SMOTE with imbalanced-learn's semantics: each synthetic row is `x_i + gap * (x_nn - x_i)` with
/// `x_i` a random row of the class, `x_nn` one of its `k` nearest neighbours in the class (chosen
/// uniformly), `gap` uniform in `[0, 1)`. Classes with fewer than `k + 1` rows use the
/// neighbours they have; a class of one row is an error. The nearest neighbours are exact and
/// computed on the chosen device ([`crate::knn`]).
///
/// ```
/// use smrt::{Balancer, Origin, Smote};
///
/// let x = ndarray::Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 5) % 13) as f32);
/// let y: Vec<&str> = (0..40).map(|i| if i < 32 { "a" } else { "b" }).collect();
/// let out = Smote::new().k_neighbors(3).seed(1).fit_resample(x.view(), &y)?;
/// assert_eq!(out.class_counts()[&"b"], 32);
/// assert!(matches!(out.origin[40], Origin::Synthetic { source: Some(i) } if i >= 32));
/// # Ok::<(), smrt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Smote<L> {
    strategy: Strategy<L>,
    k_neighbors: usize,
    seed: u64,
    backend: Backend,
    device: OnceLock<Device>,
}

impl<L: Label> Default for Smote<L> {
    fn default() -> Self {
        Smote {
            strategy: Strategy::NotMajority,
            k_neighbors: 5,
            seed: 0,
            backend: Backend::Auto,
            device: OnceLock::new(),
        }
    }
}

impl<L: Label> Smote<L> {
    /// SMOTE with 5 neighbours, [`Strategy::NotMajority`], seed 0, [`Backend::Auto`].
    pub fn new() -> Self {
        Self::default()
    }

    /// How many rows each class should reach.
    pub fn strategy(mut self, strategy: Strategy<L>) -> Self {
        self.strategy = strategy;
        self
    }

    /// Neighbours per row (default 5, at most 64).
    pub fn k_neighbors(mut self, k: usize) -> Self {
        self.k_neighbors = k;
        self
    }

    /// Seed of every random choice.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Where the nearest neighbours are computed.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Compute the nearest neighbours on this device (takes precedence over the backend).
    pub fn device(mut self, device: Device) -> Self {
        self.device = OnceLock::from(device);
        self
    }

    fn resolved_device(&self) -> Result<Device> {
        Device::once(&self.device, self.backend)
    }
}

impl<L: Label> Balancer<L> for Smote<L> {
    fn fit_resample(&self, x: ArrayView2<'_, f32>, y: &[L]) -> Result<Resampled<L>> {
        self.resample(x, None, y, Part::All)
    }

    /// SMOTE-NC (Chawla et al., 2002, section 6.1) where there are categorical columns:
    /// neighbours by the Euclidean distance over the numeric columns plus `med^2` for each
    /// categorical column whose values differ, `med` the median of the class's standard
    /// deviations of the numeric columns (found as exact neighbours of the numeric columns beside
    /// one-hot columns scaled by `med / sqrt 2`); numeric values interpolated as in SMOTE; each
    /// categorical value the most frequent among the base row's `k` neighbours (a tie goes to
    /// the value of the nearest of the tied neighbours). Where every column is categorical,
    /// SMOTE-N: neighbours by the value difference metric (on the CPU), each synthetic row the
    /// most frequent value of each column among a random row's `k` neighbours.
    fn fit_resample_mixed(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
    ) -> Result<Resampled<L>> {
        categories.check(x.nrows())?;
        if categories.codes.ncols() == 0 {
            return self.fit_resample(x, y);
        }
        if x.ncols() == 0 {
            return self.resample_nominal(categories, y);
        }
        self.resample(x, Some(categories), y, Part::All)
    }

    fn fit_synthetic(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
        shard: Shard,
    ) -> Result<Resampled<L>> {
        categories.check(x.nrows())?;
        if x.ncols() == 0 && categories.codes.ncols() > 0 {
            return Ok(self.resample_nominal(categories, y)?.synthetic_shard(shard));
        }
        let categories = (categories.codes.ncols() > 0).then_some(categories);
        self.resample(x, categories, y, Part::Synthetic(shard))
    }
}

impl<L: Label> Smote<L> {
    /// SMOTE-N: every column categorical (see [`super::smoten`]).
    fn resample_nominal(&self, categories: Categories<'_>, y: &[L]) -> Result<Resampled<L>> {
        self.check_k()?;
        let n_rows = categories.codes.nrows();
        let classes = Classes::of_labels(n_rows, y)?;
        let to_add = self.strategy.samples_to_add(&classes.counts())?;
        let mut class_of_row = vec![0; n_rows];
        for (c, rows) in classes.rows.values().enumerate() {
            rows.iter().for_each(|&r| class_of_row[r] = c);
        }
        let tables = value_differences(
            categories.codes,
            categories.levels,
            &class_of_row,
            classes.rows.len(),
        );
        let mut voted = categories.codes.to_owned();
        let (mut out_y, mut origin): (Vec<L>, Vec<Origin>) =
            (y.to_vec(), (0..n_rows).map(Origin::Real).collect());
        for (class_no, (label, rows)) in classes.rows.iter().enumerate() {
            let Some(&n) = to_add.get(*label) else {
                continue;
            };
            if rows.len() < 2 {
                return Err(Error::ClassTooSmall {
                    class: format!("{label:?}"),
                    count: rows.len(),
                    needed: 2,
                });
            }
            let class_codes = categories.codes.select(Axis(0), rows);
            let k = self.k_neighbors.min(rows.len() - 1);
            let nn = nominal_neighbors(class_codes.view(), categories.levels, &tables, k);
            vote(&mut voted, rows, &nn, class_codes.view());
            let stream = Stream::new(self.seed, Purpose::Smote, class_no as u32);
            for b in bases(rows.len(), n, stream) {
                origin.push(Origin::Synthetic {
                    source: Some(rows[b as usize]),
                });
                out_y.push((*label).clone());
            }
        }
        Ok(Resampled {
            x: Array2::zeros((origin.len(), 0)),
            codes: categories.follow(&origin, voted.view()),
            y: out_y,
            origin,
            models: Default::default(),
        })
    }

    fn check_k(&self) -> Result<()> {
        if !(1..=KNN_MAX_K).contains(&self.k_neighbors) {
            return Err(Error::config(
                "k_neighbors",
                format!("{} is outside 1..={KNN_MAX_K}", self.k_neighbors),
            ));
        }
        Ok(())
    }
}

impl<L: Label> Smote<L> {
    fn resample(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Option<Categories<'_>>,
        y: &[L],
        part: Part,
    ) -> Result<Resampled<L>> {
        self.check_k()?;
        let classes = Classes::of(x, y)?;
        let to_add = self.strategy.samples_to_add(&classes.counts())?;
        let jobs = classes.jobs(&to_add, part);
        if let Some(small) = jobs.iter().find(|j| j.rows.len() < 2) {
            return Err(Error::ClassTooSmall {
                class: format!("{:?}", small.label),
                count: small.rows.len(),
                needed: 2,
            });
        }
        let device = if jobs.is_empty() {
            Device::Cpu
        } else {
            self.resolved_device()?
        };
        let mut grown = Vec::with_capacity(jobs.len());
        // The categories each synthetic row takes, by its base row (SMOTE-NC).
        let mut voted = categories.map(|c| c.codes.to_owned());
        // Classes with nothing in the rows asked for are not searched.
        for job in jobs.iter().filter(|j| !j.slice.is_empty()) {
            let (class_no, label, rows, slice) =
                (job.class_no, job.label, job.rows, job.slice.clone());
            let needed = memory_needed(rows.len(), x.ncols(), self.k_neighbors, slice.len());
            check_memory(label, rows.len(), needed, available_memory())?;
            let class_x = x.select(Axis(0), rows);
            let k = self.k_neighbors.min(rows.len() - 1);
            let nn = match (&categories, voted.as_mut()) {
                (Some(c), Some(votes)) => {
                    let class_codes = c.codes.select(Axis(0), rows);
                    let spread = with_categories(class_x.view(), class_codes.view(), c.levels);
                    let nn = nearest_neighbors(&device, spread.view(), k)?;
                    vote(votes, rows, &nn, class_codes.view());
                    nn
                }
                _ => nearest_neighbors(&device, class_x.view(), k)?,
            };
            let stream = Stream::new(self.seed, Purpose::Smote, class_no as u32);
            let segments = Segments::draw(class_x, &nn, slice, stream);
            let origin = segments
                .picks
                .iter()
                .map(|p| Origin::Synthetic {
                    source: Some(rows[p.base as usize]),
                })
                .collect();
            grown.push(Grown {
                label: label.clone(),
                x: segments,
                origin,
            });
        }
        let mut out = append(x, y, grown, Default::default(), part);
        if let (Some(c), Some(voted)) = (categories, voted) {
            out.codes = c.follow(&out.origin, voted.view());
        }
        Ok(out)
    }
}

/// Bytes SMOTE holds for a class of `rows` rows of `d` columns while it grows `synthetic` rows
/// of it: the class's rows three times over (a copy, centred, packed for the distance kernel),
/// its neighbour lists, and the synthetic rows with their choices and provenance.
fn memory_needed(rows: usize, d: usize, k: usize, synthetic: usize) -> u64 {
    let (rows, d, k, synthetic) = (rows as u64, d as u64, k as u64, synthetic as u64);
    rows * (3 * d * 4 + k * 8 + 16) + synthetic * (d * 4 + 12 + 16)
}

/// The memory the system can give now (Linux's `MemAvailable`), if it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A clear error, rather than an allocation that fails, for a class whose search and draws
/// need more memory than is `available`.
fn check_memory<L: Label>(
    label: &L,
    rows: usize,
    needed: u64,
    available: Option<u64>,
) -> Result<()> {
    match available {
        Some(available) if needed > available => Err(Error::ClassTooLarge {
            class: format!("{label:?}"),
            rows,
            method: "SMOTE",
            needed_mb: needed >> 20,
            available_mb: available >> 20,
            advice: "SMOTE needs every row of the class and its neighbours in memory; use SMRT fitted from a sample (--method smrt --sample N), or grow the class in shards (--synthetic-only --shard K/S)",
        }),
        _ => Ok(()),
    }
}

/// The numeric columns beside each categorical column one-hot encoded at `med / sqrt 2`, so that
/// squared Euclidean distances are SMOTE-NC's: a differing category adds `2 (med / sqrt 2)^2 =
/// med^2`. `med` is the median of the numeric columns' standard deviations.
fn with_categories(
    x: ArrayView2<'_, f32>,
    codes: ArrayView2<'_, u32>,
    levels: &[u32],
) -> Array2<f32> {
    let mut sds: Vec<f32> = x.std_axis(Axis(0), 0.0).to_vec();
    sds.sort_by(f32::total_cmp);
    let m = sds.len();
    let med = if m % 2 == 1 {
        sds[m / 2]
    } else {
        0.5 * (sds[m / 2 - 1] + sds[m / 2])
    };
    let hot = med / std::f32::consts::SQRT_2;
    let width = x.ncols() + levels.iter().map(|&l| l as usize).sum::<usize>();
    let mut out = Array2::zeros((x.nrows(), width));
    for ((mut o, xr), cr) in out.rows_mut().into_iter().zip(x.rows()).zip(codes.rows()) {
        o.slice_mut(ndarray::s![..x.ncols()]).assign(&xr);
        let mut at = x.ncols();
        for (&c, &l) in cr.iter().zip(levels) {
            o[at + c as usize] = hot;
            at += l as usize;
        }
    }
    out
}

/// For each of a class's `rows` (indices into `voted`), every categorical column's most
/// frequent value among its neighbours `nn` (indices into `class_codes`).
fn vote(
    voted: &mut Array2<u32>,
    rows: &[usize],
    nn: &Array2<u32>,
    class_codes: ArrayView2<'_, u32>,
) {
    for (r, &row) in rows.iter().enumerate() {
        for (j, v) in voted.row_mut(row).iter_mut().enumerate() {
            *v = most_frequent(nn.row(r).iter().map(|&o| class_codes[[o as usize, j]]));
        }
    }
}

/// The most frequent value, nearest first: a tie goes to the value seen first.
fn most_frequent(values: impl Iterator<Item = u32> + Clone) -> u32 {
    let count = |v: u32| values.clone().filter(|&w| w == v).count();
    let mut best = (0, u32::MAX);
    for v in values.clone() {
        let c = count(v);
        if c > best.0 {
            best = (c, v);
        }
    }
    best.1
}

/// One synthetic row: `x[base] + gap (x[other] - x[base])`.
#[derive(Debug, Clone, Copy)]
struct Pick {
    base: u32,
    other: u32,
    gap: f32,
}

/// The synthetic rows of one class, written straight into the output.
struct Segments {
    /// The class's rows, standard layout.
    x: Array2<f32>,
    picks: Vec<Pick>,
}

impl Segments {
    /// Draws rows `slice` of the class's run. Block `s` of `stream` draws synthetic row `s`: its words 0, 1, 2 choose
    /// the base, the neighbour, the gap. Drawn on separate threads; the result does not depend
    /// on their number.
    fn draw(x: Array2<f32>, nn: &Array2<u32>, slice: Range<usize>, stream: Stream) -> Self {
        let (rows, k) = (x.nrows() as u32, nn.ncols() as u32);
        let nn = nn.as_slice().expect("standard layout");
        const PART: usize = 8192;
        let end = slice.end;
        let starts: Vec<usize> = slice.step_by(PART).collect();
        let parts = crate::parallel::parallel_map(&starts, |&first| {
            (first..(first + PART).min(end))
                .map(|s| {
                    let w = stream.block(s as u64);
                    let base = below(w[0], rows);
                    let other = nn[(base * k + below(w[1], k)) as usize];
                    // Uniform in [0, 1): the top 24 bits.
                    let gap = (w[2] >> 8) as f32 * (1.0 / 16_777_216.0);
                    Pick { base, other, gap }
                })
                .collect::<Vec<_>>()
        });
        // `select` gives standard layout already: no copy then.
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        Segments {
            x,
            picks: parts.concat(),
        }
    }
}

impl Rows for Segments {
    fn count(&self) -> usize {
        self.picks.len()
    }

    fn write_row(&self, s: usize, out: &mut [f32]) {
        let Pick { base, other, gap } = self.picks[s];
        let a = self.x.row(base as usize);
        let b = self.x.row(other as usize);
        let (a, b) = (
            a.to_slice().expect("standard layout"),
            b.to_slice().expect("standard layout"),
        );
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = a + gap * (b - a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_too_large_for_memory_is_a_clear_error() {
        // 100 million rows of 20 columns: about 28 GB.
        let needed = memory_needed(100_000_000, 20, 5, 100_000_000);
        assert!(needed > 20 << 30, "{needed}");
        let err = check_memory(&"fraud", 100_000_000, needed, Some(8 << 30)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("class \"fraud\" has 100000000 rows"),
            "{text}"
        );
        assert!(
            text.contains("8192 MB are available") && text.contains("--sample"),
            "{text}"
        );
        assert!(check_memory(&"fraud", 10, 1_000, Some(8 << 30)).is_ok());
        // Where the system does not say, SMOTE goes ahead.
        assert!(check_memory(&"fraud", 100_000_000, needed, None).is_ok());
    }
}
