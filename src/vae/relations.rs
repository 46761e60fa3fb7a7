//! Linear relations that every row of a class satisfies exactly, kept in every draw.
//!
//! Real tables hold such relations: a column that is the sum or the mean of others (a total
//! count, an intensity that is the mean of three colour channels), or columns that are equal in
//! every row of the class (the five suits of a flush). Interpolating between rows keeps them; a
//! decoder with independent noise per column breaks them, and classifiers split on the broken
//! values. Where a class has more rows than modelled columns, the directions along which its
//! rows do not vary at all are found once, and each draw's component along them is removed.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// An eigenvalue of the class's correlation matrix at most this fraction of the largest marks a
/// direction the rows do not vary along: a relation that holds to the precision the data is
/// written in. In the quality suites exact relations sit at 1e-17 to 4e-11 (the largest is
/// kc1's time = effort / 18, both written to two decimals); a relation that a few rows of a
/// class break at 3e-9 (pc1's majority); glass's oxide shares, which sum to about 100, at 4e-4.
const FIXED_RATIO: f64 = 1e-10;

/// The exact linear relations of a class's modelled columns, as the directions (in
/// standardised units) along which its rows do not vary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relations {
    /// Each modelled column's mean over the class's rows.
    mean: Vec<f32>,
    /// Each modelled column's standard deviation over the class's rows.
    scale: Vec<f32>,
    /// Orthonormal directions in standardised units, row-major (`relations x modelled`).
    fixed: Vec<f32>,
}

impl Relations {
    /// The relations of the rows `x` (`rows x modelled`, no constant column), or `None` where
    /// there are none, or too few rows to tell one (no more rows than columns: then rows span
    /// too few directions for the missing ones to say anything about the class).
    pub(crate) fn observe(x: ArrayView2<'_, f32>) -> Option<Relations> {
        let (n, m) = x.dim();
        if m < 2 || n <= m {
            return None;
        }
        let mut mean = Vec::with_capacity(m);
        let mut scale = Vec::with_capacity(m);
        for c in x.axis_iter(Axis(1)) {
            let mu = c.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            let var = c.iter().map(|&v| (f64::from(v) - mu).powi(2)).sum::<f64>() / n as f64;
            if !(var > 0.0 && var.is_finite()) {
                return None;
            }
            mean.push(mu);
            scale.push(var.sqrt());
        }
        let z = DMatrix::from_fn(n, m, |i, j| (f64::from(x[[i, j]]) - mean[j]) / scale[j]);
        let correlation = z.tr_mul(&z) / n as f64;
        let eigen = SymmetricEigen::new(correlation);
        let largest = eigen.eigenvalues.max();
        let fixed: Vec<f32> = eigen
            .eigenvectors
            .column_iter()
            .zip(eigen.eigenvalues.iter())
            .filter(|&(_, &value)| value <= FIXED_RATIO * largest)
            .flat_map(|(direction, _)| direction.into_iter().map(|&v| v as f32))
            .collect();
        (!fixed.is_empty()).then(|| Relations {
            mean: mean.iter().map(|&v| v as f32).collect(),
            scale: scale.iter().map(|&v| v as f32).collect(),
            fixed,
        })
    }

    /// The number of modelled columns the relations are over.
    pub fn columns(&self) -> usize {
        self.mean.len()
    }

    /// The number of independent relations.
    pub fn len(&self) -> usize {
        self.fixed.len() / self.mean.len().max(1)
    }

    /// Whether there are none (never, for relations observed from rows).
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }

    /// Whether the stored sizes agree (a check of a loaded model).
    pub(crate) fn is_consistent(&self, modelled: usize) -> bool {
        self.mean.len() == modelled
            && self.scale.len() == modelled
            && !self.fixed.is_empty()
            && self.fixed.len() % modelled == 0
    }

    /// Moves each row of `rows` (row-major, `modelled` wide, original units) to the nearest
    /// point, in standardised units, that satisfies every relation.
    pub(crate) fn keep_in_rows(&self, rows: &mut [f32]) {
        // A row is the class mean (which satisfies every relation) plus a step from it.
        for row in rows.chunks_exact_mut(self.columns()) {
            row.iter_mut().zip(&self.mean).for_each(|(v, &mu)| *v -= mu);
            self.keep_in_steps(row);
            row.iter_mut()
                .zip(&self.mean)
                .for_each(|(v, &mu)| *v = (*v + mu).clamp(-f32::MAX, f32::MAX));
        }
    }

    /// Removes from each step of `steps` (row-major, `modelled` wide, original units: moves
    /// added to rows that satisfy the relations) its part that would break them.
    pub(crate) fn keep_in_steps(&self, steps: &mut [f32]) {
        for step in steps.chunks_exact_mut(self.columns()) {
            step.iter_mut().zip(&self.scale).for_each(|(v, &s)| *v /= s);
            self.remove_fixed(step);
            step.iter_mut()
                .zip(&self.scale)
                .for_each(|(v, &s)| *v = (*v * s).clamp(-f32::MAX, f32::MAX));
        }
    }

    /// `z - sum_k (u_k . z) u_k` over the fixed directions `u_k` (orthonormal); a row with a
    /// value past f32's range (saturated draws) is left as it is.
    fn remove_fixed(&self, z: &mut [f32]) {
        if !z.iter().all(|v| v.is_finite()) {
            return;
        }
        for u in self.fixed.chunks_exact(self.columns()) {
            let along: f32 = u.iter().zip(z.iter()).map(|(a, b)| a * b).sum();
            if along.is_finite() {
                z.iter_mut().zip(u).for_each(|(v, &a)| *v -= along * a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Rows whose column 2 is the sum of columns 0 and 1 and whose column 4 equals column 3.
    fn related_rows(n: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, 5), |(i, j)| {
            let (a, b, c) = (
                (i % 7) as f32,
                (i * i % 11) as f32 * 0.5,
                (i % 4) as f32 + 1.0,
            );
            [a, b, a + b, c, c][j]
        })
    }

    #[test]
    fn exact_relations_are_found_and_kept_in_draws_and_steps() {
        let x = related_rows(40);
        let r = Relations::observe(x.view()).expect("two relations");
        assert_eq!((r.len(), r.columns()), (2, 5));
        assert!(r.is_consistent(5) && !r.is_consistent(4));
        // Draws that break both relations come back satisfying them.
        let mut rows = vec![1.0f32, 2.0, 7.5, 3.0, 1.0, -4.0, 0.5, 0.0, 2.0, 2.5];
        r.keep_in_rows(&mut rows);
        for row in rows.chunks_exact(5) {
            assert!((row[2] - row[0] - row[1]).abs() < 1e-4, "{row:?}");
            assert!((row[3] - row[4]).abs() < 1e-4, "{row:?}");
        }
        // A row that satisfies them does not move.
        let mut kept = x.row(5).to_vec();
        r.keep_in_rows(&mut kept);
        for (a, b) in kept.iter().zip(x.row(5)) {
            assert!((a - b).abs() < 1e-4, "{kept:?}");
        }
        // Steps: a zero step stays zero, and any step keeps a related row related.
        let mut steps = vec![0.0f32; 5];
        r.keep_in_steps(&mut steps);
        assert_eq!(steps, vec![0.0; 5]);
        let mut steps = vec![0.3f32, -1.0, 2.0, 0.7, -0.2];
        r.keep_in_steps(&mut steps);
        let moved: Vec<f32> = x.row(3).iter().zip(&steps).map(|(a, b)| a + b).collect();
        assert!((moved[2] - moved[0] - moved[1]).abs() < 1e-4, "{moved:?}");
        assert!((moved[3] - moved[4]).abs() < 1e-4, "{moved:?}");
    }

    #[test]
    fn no_relation_is_read_into_free_or_too_few_rows() {
        // Free columns: none.
        let free = Array2::from_shape_fn((30, 3), |(i, j)| {
            ((i * (j + 2)) % (5 + j)) as f32 + 0.1 * (i * i % 3) as f32
        });
        assert_eq!(Relations::observe(free.view()), None);
        // A near-relation (a sum off by a varying amount) is no relation.
        let mut near = related_rows(40);
        for i in 0..40 {
            near[[i, 2]] += 0.01 * (i % 3) as f32;
            near[[i, 4]] += 0.02 * (i % 5) as f32;
        }
        assert_eq!(Relations::observe(near.view()), None);
        // As many rows as columns: every set of rows spans too few directions to tell.
        let x = related_rows(5);
        assert_eq!(Relations::observe(x.view()), None);
        assert!(Relations::observe(related_rows(6).view()).is_some());
    }
}
