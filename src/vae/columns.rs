//! What a VAE knows of each column of its class beyond the network: which columns are constant
//! (copied, not modelled), each column's observed range (for clipping), and which hold only whole
//! numbers (rounded on output, so counts stay counts).

use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// The observed facts of one column of the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The smallest value seen.
    pub min: f32,
    /// The largest value seen.
    pub max: f32,
    /// Every value seen is a whole number.
    pub integer: bool,
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
}

impl Columns {
    /// Observes the columns of `x` (finite values, at least one row). Constant columns are left
    /// out of the model, unless every column is constant: then all are modelled (and clipping
    /// returns the constant row).
    pub fn observe(x: ArrayView2<'_, f32>) -> Columns {
        let stats: Vec<ColumnStats> = x
            .axis_iter(Axis(1))
            .map(|c| ColumnStats {
                min: c.iter().copied().fold(f32::INFINITY, f32::min),
                max: c.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                integer: c.iter().all(|v| v.fract() == 0.0),
            })
            .collect();
        let mut modelled: Vec<usize> = (0..stats.len())
            .filter(|&j| !stats[j].is_constant())
            .collect();
        if modelled.is_empty() {
            modelled = (0..stats.len()).collect();
        }
        Columns { stats, modelled }
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
                };
                features
            ],
            modelled: (0..features).collect(),
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

    /// Rows of the modelled columns (row-major, `rows x modelled`) widened to every column:
    /// constant columns get their value, whole-number columns are rounded, and with `clip`
    /// every value is limited to its column's observed range.
    pub(crate) fn complete(&self, modelled: &[f32], rows: usize, clip: bool) -> Vec<f32> {
        let (m, d) = (self.modelled.len(), self.stats.len());
        if d == 0 {
            return Vec::new(); // categorical columns only
        }
        let mut out = vec![0.0f32; rows * d];
        for (dst, src) in out.chunks_exact_mut(d).zip(modelled.chunks_exact(m)) {
            for (k, &j) in self.modelled.iter().enumerate() {
                dst[j] = src[k];
            }
            for (v, s) in dst.iter_mut().zip(&self.stats) {
                if s.is_constant() {
                    *v = s.min;
                    continue;
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
        let c = Columns::observe(x.view());
        assert_eq!(c.modelled(), &[0, 2]);
        assert!(c.stats()[0].integer && !c.stats()[2].integer);
        // Two generated rows of the modelled columns (0 and 2).
        let out = c.complete(&[2.6, 9.0, -7.0, 1.25], 2, true);
        assert_eq!(out, vec![3.0, 5.0, 1.5, 1.0, 5.0, 1.25]);
        let unclipped = c.complete(&[2.6, 9.0, -7.0, 1.25], 2, false);
        assert_eq!(unclipped, vec![3.0, 5.0, 9.0, -7.0, 5.0, 1.25]);
    }

    #[test]
    fn all_constant_columns_are_all_modelled_and_clipped_to_the_row() {
        let x = array![[1.0f32, 2.0], [1.0, 2.0]];
        let c = Columns::observe(x.view());
        assert_eq!(c.modelled(), &[0, 1]);
        assert_eq!(c.complete(&[0.3, 7.0], 1, false), vec![1.0, 2.0]);
    }
}
