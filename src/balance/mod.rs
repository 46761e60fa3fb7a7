//! Balancers: take a labelled matrix, return it resampled. Every one implements [`Balancer`],
//! so callers can swap them.

pub mod keyed;
mod random;
mod smote;
mod smoten;
mod smrt;

pub use crate::origin::Origin;
pub use random::{RandomOverSampler, RandomUnderSampler};
pub use smote::Smote;
pub use smrt::{Smrt, SmrtBuilder};

use std::collections::BTreeMap;
use std::ops::Range;

use ndarray::{Array2, ArrayView2};

use crate::check;
use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::strategy::Label;
use crate::table::Table;
use crate::vae::Vae;

/// A resampler of labelled rows: SMRT, SMOTE, random over- or under-sampling.
///
/// ```
/// use smrt::{Balancer, RandomOverSampler, Smote, Strategy};
///
/// let x = ndarray::Array2::from_shape_fn((30, 2), |(i, j)| (i * 3 + j) as f32);
/// let y: Vec<u8> = (0..30).map(|i| u8::from(i >= 24)).collect(); // 24 vs 6
/// let samplers: Vec<Box<dyn Balancer<u8>>> = vec![
///     Box::new(Smote::new().k_neighbors(3)),
///     Box::new(RandomOverSampler::new().strategy(Strategy::Ratio(0.5))),
/// ];
/// for s in &samplers {
///     let out = s.fit_resample(x.view(), &y)?;
///     assert!(out.class_counts()[&1] >= 12);
/// }
/// # Ok::<(), smrt::Error>(())
/// ```
pub trait Balancer<L: Label> {
    /// Resamples `x` (rows) with labels `y`.
    fn fit_resample(&self, x: ArrayView2<'_, f32>, y: &[L]) -> Result<Resampled<L>>;

    /// Resamples rows of numeric columns `x` and categorical columns `categories` with labels
    /// `y`; the result's [`Resampled::codes`] holds the categorical columns. Random over- and
    /// under-sampling copy or keep whole rows, [`Smote`] runs SMOTE-NC; a balancer that cannot
    /// model categories says so with an error.
    fn fit_resample_mixed(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
    ) -> Result<Resampled<L>> {
        categories.check(x.nrows())?;
        if categories.codes.ncols() > 0 {
            return Err(Error::config(
                "categorical",
                "this balancer models numeric columns only; random over- and under-sampling and SMOTE (SMOTE-NC) take categorical columns",
            ));
        }
        self.fit_resample(x, y)
    }

    /// The synthetic rows alone: those [`Balancer::fit_resample_mixed`] appends to the input
    /// rows, the same values in the same order, without copying the input rows into the result
    /// (for callers that hold the input already and append to it themselves). Each row's
    /// [`Resampled::origin`] names its source row; an under-sampler returns no rows.
    ///
    /// With a `shard` other than [`Shard::ALL`], only that slice of the synthetic rows (see
    /// [`Shard::range`]): the slices of shards `1/S ..= S/S` concatenated are the rows of
    /// `Shard::ALL`. Over-samplers compute only the slice (and fit or search only the classes
    /// it touches); every row is addressed by (seed, class, row), so no shard needs another's.
    ///
    /// ```
    /// use smrt::{balance::Categories, shard::Shard, Balancer, Smote};
    /// let x = ndarray::Array2::from_shape_fn((30, 2), |(i, j)| (i * 3 + j) as f32);
    /// let y: Vec<u8> = (0..30).map(|i| u8::from(i >= 24)).collect(); // 24 vs 6
    /// let smote = Smote::new().k_neighbors(3);
    /// let all = smote.fit_resample(x.view(), &y)?;
    /// let none = Categories::none(30);
    /// let synthetic = smote.fit_synthetic(x.view(), none, &y, Shard::ALL)?;
    /// assert_eq!(synthetic.x.nrows(), 18);
    /// assert_eq!(synthetic.x, all.x.slice(ndarray::s![30.., ..]));
    /// // The second of three shards: synthetic rows 6 to 11.
    /// let second = smote.fit_synthetic(x.view(), none, &y, Shard::new(2, 3)?)?;
    /// assert_eq!(second.x, synthetic.x.slice(ndarray::s![6..12, ..]));
    /// # Ok::<(), smrt::Error>(())
    /// ```
    fn fit_synthetic(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
        shard: Shard,
    ) -> Result<Resampled<L>> {
        Ok(self
            .fit_resample_mixed(x, categories, y)?
            .synthetic_shard(shard))
    }
}

/// Which rows a resampling returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The input rows, then the synthetic rows.
    All,
    /// A shard of the synthetic rows only ([`Balancer::fit_synthetic`]).
    Synthetic(Shard),
}

/// A class that grows: its number in label order (which keys its random streams), its label and
/// rows, and the part of its run of synthetic rows to draw.
pub(crate) struct Job<'c, L> {
    pub class_no: usize,
    pub label: &'c L,
    pub rows: &'c [usize],
    pub slice: Range<usize>,
}

/// Balances the rows of `table` with `balancer`: its numeric and categorical columns both, by
/// [`Balancer::fit_resample_mixed`]. Write the result with [`Table::write_resampled`].
///
/// ```
/// use smrt::{balance::resample_table, table::Table, RandomOverSampler};
/// let csv = "size,colour,label\n1,red,a\n2,blue,a\n3,red,a\n4,red,b\n";
/// let t = Table::from_reader(csv.as_bytes(), std::path::Path::new("t.csv"), None)?;
/// let out = resample_table(&t, &RandomOverSampler::new())?;
/// assert_eq!(out.class_counts()[&"b".to_string()], 3);
/// assert_eq!(out.codes.ncols(), 1); // colour
/// # Ok::<(), smrt::Error>(())
/// ```
pub fn resample_table(table: &Table, balancer: &dyn Balancer<String>) -> Result<Resampled<String>> {
    let levels = table.levels();
    let categories = Categories {
        codes: table.codes.view(),
        levels: &levels,
    };
    balancer.fit_resample_mixed(table.x.view(), categories, &table.y)
}

/// Categorical columns beside a numeric matrix: one code per row and column, below the column's
/// number of categories.
#[derive(Debug, Clone, Copy)]
pub struct Categories<'a> {
    /// Codes, one row per row of the numeric matrix, one column per categorical column.
    pub codes: ArrayView2<'a, u32>,
    /// The number of categories of each column.
    pub levels: &'a [u32],
}

impl Categories<'_> {
    /// No categorical columns beside `rows` rows.
    pub fn none(rows: usize) -> Self {
        Categories {
            codes: ArrayView2::from_shape((rows, 0), &[]).expect("no values for no columns"),
            levels: &[],
        }
    }

    /// Checks the shapes and that every code is below its column's level.
    pub fn check(&self, rows: usize) -> Result<()> {
        if self.codes.nrows() != rows {
            return Err(Error::ShapeMismatch {
                what: "rows of categorical codes",
                expected: rows,
                got: self.codes.nrows(),
            });
        }
        if self.codes.ncols() != self.levels.len() {
            return Err(Error::ShapeMismatch {
                what: "category counts (one per categorical column)",
                expected: self.codes.ncols(),
                got: self.levels.len(),
            });
        }
        for (j, (col, &level)) in self
            .codes
            .columns()
            .into_iter()
            .zip(self.levels)
            .enumerate()
        {
            if let Some(bad) = col.iter().find(|&&c| c >= level) {
                return Err(Error::config(
                    "categorical",
                    format!("code {bad} in categorical column {j} of {level} categories"),
                ));
            }
        }
        Ok(())
    }

    /// The codes of each output row: an input row's own, or for a synthetic row those of its
    /// source row in `source_codes` (the input's codes, or codes chosen per source row).
    pub(crate) fn follow(
        &self,
        origin: &[Origin],
        source_codes: ArrayView2<'_, u32>,
    ) -> Array2<u32> {
        let q = self.codes.ncols();
        let mut out = Array2::zeros((origin.len(), q));
        for (mut row, o) in out.rows_mut().into_iter().zip(origin) {
            match *o {
                Origin::Real(i) => row.assign(&self.codes.row(i)),
                Origin::Synthetic { source: Some(i) } => row.assign(&source_codes.row(i)),
                Origin::Synthetic { source: None } => {
                    unreachable!("rows with categories are drawn from a source row")
                }
            }
        }
        out
    }
}

/// The rows of each class, after checking the input.
pub(crate) struct Classes<'a, L> {
    /// Row indices of each class, in label order.
    pub rows: BTreeMap<&'a L, Vec<usize>>,
}

impl<'a, L: Label> Classes<'a, L> {
    pub fn of(x: ArrayView2<'_, f32>, y: &'a [L]) -> Result<Self> {
        check::finite_matrix(x)?;
        Classes::of_labels(x.nrows(), y)
    }

    /// The classes of rows with numeric columns `x` and maybe categorical ones: rows of
    /// categorical columns only have no numeric values to check.
    pub fn of_mixed(
        x: ArrayView2<'_, f32>,
        categories: Option<&Categories<'_>>,
        y: &'a [L],
    ) -> Result<Self> {
        match categories {
            Some(c) if x.ncols() == 0 && c.codes.ncols() > 0 => Classes::of_labels(x.nrows(), y),
            _ => Classes::of(x, y),
        }
    }

    /// The classes of `rows` rows without numeric columns to check.
    pub fn of_labels(rows: usize, y: &'a [L]) -> Result<Self> {
        if rows == 0 {
            return Err(Error::EmptyInput("the matrix has no rows"));
        }
        if y.len() != rows {
            return Err(Error::ShapeMismatch {
                what: "labels (one per row)",
                expected: rows,
                got: y.len(),
            });
        }
        let mut rows: BTreeMap<&L, Vec<usize>> = BTreeMap::new();
        for (i, l) in y.iter().enumerate() {
            rows.entry(l).or_default().push(i);
        }
        Ok(Classes { rows })
    }

    /// The classes `to_add` grows, in label order, each with the rows of its synthetic run that
    /// `part` asks for: all of them, or the part of each that falls in the shard's slice of the
    /// runs one after another (empty where none does).
    pub fn jobs(&self, to_add: &BTreeMap<L, usize>, part: Part) -> Vec<Job<'_, L>> {
        let total = to_add.values().sum();
        let wanted = match part {
            Part::All => 0..total,
            Part::Synthetic(shard) => shard.range(total),
        };
        let mut first = 0;
        (self.rows.iter().enumerate())
            .filter_map(|(class_no, (label, rows))| {
                let n = *to_add.get(*label)?;
                let (lo, hi) = (wanted.start.max(first), wanted.end.min(first + n));
                let slice = if lo < hi {
                    lo - first..hi - first
                } else {
                    0..0
                };
                first += n;
                Some(Job {
                    class_no,
                    label: *label,
                    rows,
                    slice,
                })
            })
            .collect()
    }

    /// Rows per class.
    pub fn counts(&self) -> BTreeMap<L, usize> {
        self.rows
            .iter()
            .map(|(l, r)| ((*l).clone(), r.len()))
            .collect()
    }
}

/// Rows that can be written into an output row by row, from any thread.
pub(crate) trait Rows: Sync {
    /// The number of rows.
    fn count(&self) -> usize;
    /// Writes row `r` into `out`.
    fn write_row(&self, r: usize, out: &mut [f32]);
}

impl Rows for ArrayView2<'_, f32> {
    fn count(&self) -> usize {
        self.nrows()
    }

    fn write_row(&self, r: usize, out: &mut [f32]) {
        let row = self.row(r);
        match row.as_slice() {
            Some(values) => out.copy_from_slice(values),
            None => out.iter_mut().zip(row).for_each(|(o, &v)| *o = v),
        }
    }
}

impl Rows for Array2<f32> {
    fn count(&self) -> usize {
        self.nrows()
    }

    fn write_row(&self, r: usize, out: &mut [f32]) {
        self.view().write_row(r, out);
    }
}

/// The rows grown for one class.
pub(crate) struct Grown<L, R = Array2<f32>> {
    pub label: L,
    pub x: R,
    pub origin: Vec<Origin>,
}

/// An output being built: the input rows first, unchanged and in order, then synthetic rows
/// pushed class by class.
pub(crate) struct Output<L> {
    /// Row-major values, `x.ncols()` a row.
    pub data: Vec<f32>,
    pub y: Vec<L>,
    pub origin: Vec<Origin>,
    width: usize,
}

impl<L: Clone> Output<L> {
    /// The input rows `x` with labels `y` where `part` is [`Part::All`] (else nothing yet),
    /// and room for `synthetic` rows more.
    pub fn with_input(x: ArrayView2<'_, f32>, y: &[L], synthetic: usize, part: Part) -> Self {
        let width = x.ncols();
        let input = if part == Part::All { x.nrows() } else { 0 };
        let total = input + synthetic;
        let mut data = Vec::with_capacity(total * width);
        crate::parallel::extend_rows(&mut data, input, width, |r, out| x.write_row(r, out));
        let mut out_y = Vec::with_capacity(total);
        out_y.extend_from_slice(&y[..input]);
        let mut origin = Vec::with_capacity(total);
        origin.extend((0..input).map(Origin::Real));
        Output {
            data,
            y: out_y,
            origin,
            width,
        }
    }

    /// The result, with the categorical columns `codes` of every row.
    pub fn finish(self, codes: Array2<u32>, models: BTreeMap<L, Vae>) -> Resampled<L> {
        let rows = self.y.len();
        Resampled {
            x: Array2::from_shape_vec((rows, self.width), self.data).expect("rows x width values"),
            codes,
            y: self.y,
            origin: self.origin,
            models,
        }
    }
}

/// The input rows (unless `part` is [`Part::Synthetic`]), then each class's synthetic rows.
pub(crate) fn append<L: Clone, R: Rows>(
    x: ArrayView2<'_, f32>,
    y: &[L],
    grown: Vec<Grown<L, R>>,
    models: BTreeMap<L, Vae>,
    part: Part,
) -> Resampled<L> {
    let d = x.ncols();
    let synthetic = grown.iter().map(|g| g.x.count()).sum::<usize>();
    let mut out = Output::with_input(x, y, synthetic, part);
    for g in grown {
        crate::parallel::extend_rows(&mut out.data, g.x.count(), d, |r, row| {
            g.x.write_row(r, row)
        });
        out.y.extend(std::iter::repeat_n(g.label, g.x.count()));
        out.origin.extend(g.origin);
    }
    let rows = out.y.len();
    out.finish(Array2::zeros((rows, 0)), models)
}

/// The result of balancing.
#[derive(Debug, Clone)]
pub struct Resampled<L> {
    /// The rows: the input rows first, unchanged and in order, then the synthetic rows (unless
    /// the balancer was asked to shuffle). An under-sampler keeps a subset of the input rows, in
    /// input order.
    pub x: Array2<f32>,
    /// The categorical columns of each row, from [`Balancer::fit_resample_mixed`]; no columns
    /// otherwise.
    pub codes: Array2<u32>,
    /// The label of each row.
    pub y: Vec<L>,
    /// Where each row came from.
    pub origin: Vec<Origin>,
    /// The model of each class that received synthetic rows (trained or passed in); empty for
    /// the samplers that have no model.
    pub models: BTreeMap<L, Vae>,
}

impl<L: Ord> Resampled<L> {
    /// Number of synthetic rows.
    pub fn synthetic_count(&self) -> usize {
        self.origin.iter().filter(|o| o.is_synthetic()).count()
    }

    /// The synthetic rows alone, in order (what [`Balancer::fit_synthetic`] returns).
    pub fn synthetic_only(self) -> Self
    where
        L: Clone,
    {
        self.synthetic_shard(Shard::ALL)
    }

    /// Slice `shard` of the synthetic rows (what [`Balancer::fit_synthetic`] returns for
    /// a shard), taken in one copy.
    pub(crate) fn synthetic_shard(self, shard: Shard) -> Self
    where
        L: Clone,
    {
        let synthetic: Vec<usize> = (self.origin.iter().enumerate())
            .filter(|(_, o)| o.is_synthetic())
            .map(|(i, _)| i)
            .collect();
        let slice = shard.range(synthetic.len());
        self.keep_rows(synthetic[slice].iter().copied())
    }

    /// Rows `keep` of the result, in that order.
    fn keep_rows(self, keep: impl IntoIterator<Item = usize>) -> Self
    where
        L: Clone,
    {
        let keep: Vec<usize> = keep.into_iter().collect();
        Resampled {
            x: self.x.select(ndarray::Axis(0), &keep),
            codes: self.codes.select(ndarray::Axis(0), &keep),
            y: keep.iter().map(|&i| self.y[i].clone()).collect(),
            origin: keep.iter().map(|&i| self.origin[i]).collect(),
            models: self.models,
        }
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
