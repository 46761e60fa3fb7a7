//! What a VAE knows of each column of its class beyond the network: which columns are constant
//! (copied, not modelled), which take exactly two values (yes/no variables, modelled by a
//! two-way softmax head), each column's observed range (for clipping), which hold only whole
//! numbers (rounded on output, so counts stay counts), which hold one value in at least half
//! the rows (a point mass, kept at the class's share), and the exact linear relations between
//! the modelled columns (kept in every draw).

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::relations::Relations;
use crate::error::{Error, Result};

/// The columns of `x` holding exactly two distinct values: the yes/no variables of a table
/// (give them to each class's fit as [`super::FitJob::binary`]).
pub fn two_valued_columns(x: ArrayView2<'_, f32>) -> Vec<usize> {
    (0..x.ncols())
        .filter(|&j| distinct_up_to_three(x, j) == 2)
        .collect()
}

/// The number of distinct values in column `j` of `x`, counted up to 3 (3: three or more).
fn distinct_up_to_three(x: ArrayView2<'_, f32>, j: usize) -> usize {
    let mut seen: Vec<f32> = Vec::with_capacity(3);
    for &v in x.column(j) {
        if !seen.contains(&v) {
            seen.push(v);
            if seen.len() == 3 {
                break;
            }
        }
    }
    seen.len()
}

/// The observed facts of one column of the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The smallest value seen.
    pub min: f32,
    /// The largest value seen.
    pub max: f32,
    /// Every value seen is a whole number.
    pub integer: bool,
    /// The value at least half of the class's rows hold in a column of fractions (absent where
    /// there is none, and in models saved before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<PointMass>,
}

/// A value that at least half of a class's rows hold in one column, like a concentration of
/// exactly 0 in most rows and spread values in the rest. A Gaussian decoder smears such a point
/// into values near it that the class never has; the draws nearest the point are set to it
/// instead, as many as the class's share (how near is measured before each run, from 1,000 draws
/// made with the run's settings), but never one as far from it as the class's nearest other
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PointMass {
    /// The value.
    pub value: f32,
    /// The fraction of the class's rows that hold it.
    pub share: f32,
    /// The distance from the point to the nearest other value of the class.
    pub gap: f32,
}

impl PointMass {
    /// The value at least half of `values` hold, in two rows or more, if they are not all whole
    /// numbers (those are rounded instead) and not all the same; of two halves, the smaller.
    fn of(values: impl Iterator<Item = f32>) -> Option<PointMass> {
        let mut sorted: Vec<f32> = values.collect();
        if sorted.iter().all(|v| v.fract() == 0.0) {
            return None;
        }
        sorted.sort_by(f32::total_cmp);
        let (mut best, mut count) = (sorted[0], 0usize);
        for run in sorted.chunk_by(|a, b| a == b) {
            if run.len() > count {
                (best, count) = (run[0], run.len());
            }
        }
        let gap = sorted
            .iter()
            .filter(|&&v| v != best)
            .map(|v| (v - best).abs())
            .fold(f32::INFINITY, f32::min);
        (count >= 2 && 2 * count >= sorted.len() && gap.is_finite()).then(|| PointMass {
            value: best,
            share: count as f32 / sorted.len() as f32,
            gap,
        })
    }
}

impl ColumnStats {
    /// Whether every training row has the same value.
    pub fn is_constant(&self) -> bool {
        self.min == self.max
    }
}

/// Per-column facts of a class, and the columns the network models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Columns {
    stats: Vec<ColumnStats>,
    modelled: Vec<usize>,
    /// Columns with exactly two values in the training rows, each modelled as a yes/no
    /// variable (absent in models saved before there were any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    binary: Vec<usize>,
    /// Exact linear relations between the modelled columns (absent where there are none, and in
    /// models saved before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relations: Option<Relations>,
}

impl Columns {
    /// Observes the columns of `x` (finite values, at least one row). Constant columns are left
    /// out of the model, unless every column is constant: then all are modelled (and clipping
    /// returns the constant row). The columns `binary` (by default those with exactly two
    /// values in `x`) are yes/no variables: where one varies in `x`, the network models it with
    /// a two-way softmax head and cross-entropy (a Bernoulli likelihood) rather than as a
    /// Gaussian, and its draws take one of its two values. A column given in `binary` with more
    /// than two values in `x` is an error.
    pub fn observe(x: ArrayView2<'_, f32>, binary: Option<&[usize]>) -> Result<Columns> {
        let mut stats: Vec<ColumnStats> = x
            .axis_iter(Axis(1))
            .map(|c| ColumnStats {
                min: c.iter().copied().fold(f32::INFINITY, f32::min),
                max: c.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                integer: c.iter().all(|v| v.fract() == 0.0),
                point: None,
            })
            .collect();
        let binary: Vec<usize> = match binary {
            None => two_valued_columns(x),
            Some(given) => {
                let at_most_two = |j: usize| j < stats.len() && distinct_up_to_three(x, j) <= 2;
                if let Some(&j) = given.iter().find(|&&j| !at_most_two(j)) {
                    return Err(Error::DataModel(format!(
                        "column {j} was given as a yes/no column, and the rows hold more than two values in it (or have no such column)"
                    )));
                }
                // In any order, repeats allowed: the heads follow the columns' order.
                let mut given = given.to_vec();
                given.sort_unstable();
                given.dedup();
                given
            }
        };
        // A yes/no column constant in these rows is copied like any constant column.
        let binary: Vec<usize> = binary
            .into_iter()
            .filter(|&j| !stats[j].is_constant())
            .collect();
        let mut modelled: Vec<usize> = (0..stats.len())
            .filter(|&j| !stats[j].is_constant() && !binary.contains(&j))
            .collect();
        if modelled.is_empty() && binary.is_empty() {
            modelled = (0..stats.len()).collect();
        }
        for &j in &modelled {
            stats[j].point = PointMass::of(x.column(j).iter().copied());
        }
        let relations = Relations::observe(x.select(Axis(1), &modelled).view());
        Ok(Columns {
            stats,
            modelled,
            binary,
            relations,
        })
    }

    /// Every column modelled, no range known: for tests of the network alone.
    #[cfg(test)]
    pub(crate) fn unconstrained(features: usize) -> Columns {
        Columns {
            stats: vec![
                ColumnStats {
                    min: f32::NEG_INFINITY,
                    max: f32::INFINITY,
                    integer: false,
                    point: None,
                };
                features
            ],
            modelled: (0..features).collect(),
            binary: Vec::new(),
            relations: None,
        }
    }

    /// Number of columns of the data.
    pub fn len(&self) -> usize {
        self.stats.len()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }

    /// The facts of each column.
    pub fn stats(&self) -> &[ColumnStats] {
        &self.stats
    }

    /// The columns the network models, in order.
    pub fn modelled(&self) -> &[usize] {
        &self.modelled
    }

    /// The two-valued columns, in order: one two-way head each, after the categorical heads.
    pub fn binary(&self) -> &[usize] {
        &self.binary
    }

    /// The exact linear relations between the modelled columns that every training row
    /// satisfies, if there are any (see [`Relations`]).
    pub fn relations(&self) -> Option<&Relations> {
        self.relations.as_ref()
    }

    /// Whether both lists of columns ascend within range, no column is both modelled and
    /// two-valued, and the relations span the modelled columns (a check of a loaded model).
    pub(crate) fn is_consistent(&self) -> bool {
        let d = self.stats.len();
        let ascending = |v: &[usize]| v.windows(2).all(|p| p[0] < p[1]) && v.iter().all(|&j| j < d);
        ascending(&self.modelled)
            && ascending(&self.binary)
            && self.binary.iter().all(|j| !self.modelled.contains(j))
            && self
                .relations
                .as_ref()
                .is_none_or(|r| r.is_consistent(self.modelled.len()))
    }

    /// The code of each two-valued column of `x` (`rows x binary`): 1 for its larger value, 0
    /// for its smaller. A value between them (a row the model was not fitted on) takes the
    /// nearer one.
    pub(crate) fn binary_codes(&self, x: ArrayView2<'_, f32>) -> Array2<u32> {
        Array2::from_shape_fn((x.nrows(), self.binary.len()), |(i, k)| {
            let j = self.binary[k];
            let s = self.stats[j];
            u32::from(x[[i, j]] > s.min / 2.0 + s.max / 2.0)
        })
    }

    /// Whether the network models every column.
    fn models_all(&self) -> bool {
        self.modelled.len() == self.stats.len()
    }

    /// The modelled columns of `x`, as a standard-layout matrix.
    pub(crate) fn select(&self, x: ArrayView2<'_, f32>) -> ndarray::Array2<f32> {
        if self.models_all() {
            x.as_standard_layout().into_owned()
        } else {
            x.select(Axis(1), &self.modelled)
                .as_standard_layout()
                .into_owned()
        }
    }

    /// How near its point mass a drawn value of each column must be to be set to it, from a run
    /// of draws (`modelled`: `rows x modelled`, row-major, before [`Columns::complete`]): the
    /// distance within which the class's share of the draws lies. One entry per column, `None`
    /// where a column has no point mass (or there are no draws).
    pub(crate) fn reaches(&self, modelled: &[f32], rows: usize) -> Vec<Option<f32>> {
        let m = self.modelled.len();
        let mut reach = vec![None; self.stats.len()];
        if rows == 0 {
            return reach;
        }
        for (k, &j) in self.modelled.iter().enumerate() {
            if let Some(p) = self.stats[j].point {
                let mut far: Vec<f32> = (0..rows)
                    .map(|i| (modelled[i * m + k] - p.value).abs())
                    .collect();
                far.sort_by(f32::total_cmp);
                // The nearest `share * rows` draws (at least one) reach the point.
                let within = ((p.share * rows as f32).round() as usize).clamp(1, rows);
                reach[j] = Some(far[within - 1]);
            }
        }
        reach
    }

    /// Rows of the modelled columns (row-major, `rows x modelled`) and the codes of the
    /// two-valued columns (`rows x binary`) widened to every column: constant columns get their
    /// value, two-valued columns the value of their code, a value within `reach` of its column's
    /// point mass takes the point's value (`reach` from [`Columns::reaches`]; empty: none),
    /// whole-number columns are rounded, and with `clip` every value is limited to its column's
    /// observed range.
    pub(crate) fn complete(
        &self,
        modelled: &[f32],
        binary: &[u32],
        rows: usize,
        clip: bool,
        reach: &[Option<f32>],
    ) -> Vec<f32> {
        let (m, b, d) = (self.modelled.len(), self.binary.len(), self.stats.len());
        if d == 0 {
            return Vec::new(); // categorical columns only
        }
        let mut out = vec![0.0f32; rows * d];
        for (i, dst) in out.chunks_exact_mut(d).enumerate() {
            for (k, &j) in self.modelled.iter().enumerate() {
                dst[j] = modelled[i * m + k];
            }
            for (k, &j) in self.binary.iter().enumerate() {
                let s = self.stats[j];
                dst[j] = if binary[i * b + k] == 1 { s.max } else { s.min };
            }
            for (j, (v, s)) in dst.iter_mut().zip(&self.stats).enumerate() {
                if s.is_constant() {
                    *v = s.min;
                    continue;
                }
                if let (Some(p), Some(&Some(r))) = (s.point, reach.get(j)) {
                    let far = (*v - p.value).abs();
                    if far <= r && far < p.gap {
                        *v = p.value;
                    }
                }
                if s.integer {
                    *v = v.round();
                }
                if clip {
                    *v = v.clamp(s.min, s.max);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn constant_columns_are_copied_integers_rounded_values_clipped() {
        let x = array![[1.0f32, 5.0, 0.5], [3.0, 5.0, 1.5], [2.0, 5.0, 1.0]];
        let c = Columns::observe(x.view(), None).unwrap();
        assert_eq!(c.modelled(), &[0, 2]);
        assert!(c.binary().is_empty());
        assert!(c.stats()[0].integer && !c.stats()[2].integer);
        // Two generated rows of the modelled columns (0 and 2).
        let out = c.complete(&[2.6, 9.0, -7.0, 1.25], &[], 2, true, &[]);
        assert_eq!(out, vec![3.0, 5.0, 1.5, 1.0, 5.0, 1.25]);
        let unclipped = c.complete(&[2.6, 9.0, -7.0, 1.25], &[], 2, false, &[]);
        assert_eq!(unclipped, vec![3.0, 5.0, 9.0, -7.0, 5.0, 1.25]);
    }

    #[test]
    fn two_valued_columns_are_coded_and_take_their_values_back() {
        // Column 1 holds 0 and 1, column 2 holds -2.5 and 4 (not whole), column 0 three values.
        let x = array![
            [1.0f32, 0.0, 4.0],
            [2.0, 1.0, -2.5],
            [3.0, 1.0, 4.0],
            [2.0, 0.0, 4.0]
        ];
        let c = Columns::observe(x.view(), None).unwrap();
        assert_eq!((c.modelled(), c.binary()), (&[0][..], &[1, 2][..]));
        assert!(c.is_consistent());
        let codes = c.binary_codes(x.view());
        assert_eq!(codes, array![[0, 1], [1, 0], [1, 1], [0, 1]]);
        // A value the class never had takes the nearer of the two.
        assert_eq!(
            c.binary_codes(array![[0.0f32, 0.4, 1.0]].view()),
            array![[0, 1]]
        );
        let out = c.complete(&[1.6, 2.2], &[1, 0, 0, 1], 2, false, &[]);
        assert_eq!(out, vec![2.0, 1.0, -2.5, 2.0, 0.0, 4.0]);
        // Two-valued and constant columns only: nothing is left to the Gaussian part.
        let y = array![[7.0f32, 0.0], [7.0, 3.0]];
        let c = Columns::observe(y.view(), None).unwrap();
        assert_eq!((c.modelled(), c.binary()), (&[][..], &[1][..]));
        assert_eq!(
            c.complete(&[], &[1, 0], 2, true, &[]),
            vec![7.0, 3.0, 7.0, 0.0]
        );
        // Given yes/no columns: only those are heads, a constant one is copied, and one with
        // three values is an error.
        let c = Columns::observe(x.view(), Some(&[2])).unwrap();
        assert_eq!((c.modelled(), c.binary()), (&[0, 1][..], &[2][..]));
        let c = Columns::observe(x.view(), Some(&[2, 1, 2])).unwrap();
        assert_eq!((c.modelled(), c.binary()), (&[0][..], &[1, 2][..]));
        assert!(c.is_consistent(), "a saved model of these columns loads");
        let c = Columns::observe(y.view(), Some(&[0, 1])).unwrap();
        assert_eq!((c.modelled(), c.binary()), (&[][..], &[1][..]));
        assert!(Columns::observe(x.view(), Some(&[0])).is_err());
        assert!(Columns::observe(x.view(), Some(&[3])).is_err());
        assert_eq!(two_valued_columns(x.view()), vec![1, 2]);
        assert_eq!(two_valued_columns(y.view()), vec![1]);
    }

    #[test]
    fn a_value_most_rows_hold_is_a_point_mass_kept_at_its_share() {
        // Column 0: 0.0 in three of five rows, the nearest other value 0.25 away. Column 1:
        // whole numbers (rounded instead). Column 2: no value twice.
        let x = array![
            [0.0f32, 1.0, 0.1],
            [0.25, 2.0, 0.2],
            [0.0, 2.0, 0.3],
            [0.9, 3.0, 0.4],
            [0.0, 1.0, 0.5]
        ];
        let c = Columns::observe(x.view(), None).unwrap();
        let point = |j: usize| c.stats()[j].point;
        assert_eq!(
            point(0),
            Some(PointMass {
                value: 0.0,
                share: 0.6,
                gap: 0.25
            })
        );
        assert_eq!((point(1), point(2)), (None, None));
        // Of two halves, the smaller value; a value held by fewer than half the rows is no point.
        let tie = PointMass::of([0.5f32, 0.5, -1.5, -1.5].into_iter()).unwrap();
        assert_eq!((tie.value, tie.share, tie.gap), (-1.5, 0.5, 2.0));
        assert_eq!(
            PointMass::of([0.5f32, 0.5, -1.5, 2.0, 3.0].into_iter()),
            None
        );
        // One row of two is no point, however it halves the class.
        assert_eq!(PointMass::of([0.5f32, 0.7].into_iter()), None);
        // Ten draws of the three modelled columns; column 0 smeared around 0.0.
        let col0 = [
            -0.04f32, 0.02, -0.05, -0.01, 0.5, 0.03, 0.2, 0.05, -0.3, 0.7,
        ];
        let draws: Vec<f32> = col0.iter().flat_map(|&v| [v, 2.0, 0.3]).collect();
        let reach = c.reaches(&draws, 10);
        // Six of ten draws (the class's share) lie within 0.05 of the point.
        assert_eq!(reach, vec![Some(0.05), None, None]);
        let out = c.complete(&draws, &[], 10, false, &reach);
        let got: Vec<f32> = out.chunks_exact(3).map(|r| r[0]).collect();
        assert_eq!(got, [0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.2, 0.0, -0.3, 0.7]);
        // A wider reach still never moves a value as far from the point as the class's nearest
        // other value (0.25): the class's own values stay what they are.
        let out = c.complete(&draws, &[], 10, false, &[Some(1.0), None, None]);
        let got: Vec<f32> = out.chunks_exact(3).map(|r| r[0]).collect();
        assert_eq!(got, [0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, -0.3, 0.7]);
        // Without a reach nothing moves.
        let out = c.complete(&draws, &[], 10, false, &[]);
        assert_eq!(out.chunks_exact(3).map(|r| r[0]).collect::<Vec<_>>(), col0);
    }

    #[test]
    fn all_constant_columns_are_all_modelled_and_clipped_to_the_row() {
        let x = array![[1.0f32, 2.0], [1.0, 2.0]];
        let c = Columns::observe(x.view(), None).unwrap();
        assert_eq!(c.modelled(), &[0, 1]);
        assert_eq!(c.complete(&[0.3, 7.0], &[], 1, false, &[]), vec![1.0, 2.0]);
    }
}
