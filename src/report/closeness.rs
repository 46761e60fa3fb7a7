//! Distances in standard units: how near each class's synthetic rows come to its real rows, and to
//! the other classes'.

use ndarray::{Array2, ArrayView2};

use super::{stats, ClassReport, Closeness, Rows, SAMPLE};
use crate::engine::Device;
use crate::error::Result;
use crate::knn::nearest_in;
use crate::rng::{permutation, Purpose, Stream};

/// Rows in standard units: numeric columns over their standard deviation among the real rows
/// (constant columns as they are), one-hot categories at `1 / sqrt 2`. Rows are made when a
/// search needs them, never all at once (a column of many categories would make that large).
pub(super) struct Space<'a> {
    x: ArrayView2<'a, f32>,
    codes: ArrayView2<'a, u32>,
    scale: Vec<f32>,
    /// Where each categorical column's one-hot block starts.
    offsets: Vec<usize>,
    /// Columns of a row in this space (numeric and one-hot).
    pub(super) width: usize,
}

/// A category's one-hot value: a differing category adds `2 (1/sqrt 2)^2 = 1` to a squared
/// distance, as one standard unit does.
const ONE_HOT: f32 = std::f32::consts::FRAC_1_SQRT_2;

impl<'a> Space<'a> {
    pub(super) fn new<L>(rows: &Rows<'a, L>) -> Self {
        let real: Vec<usize> = (0..rows.x.nrows())
            .filter(|&i| !rows.synthetic[i])
            .collect();
        let scale: Vec<f32> = (0..rows.x.ncols())
            .map(|j| {
                let v: Vec<f32> = real.iter().map(|&i| rows.x[[i, j]]).collect();
                let (_, sd) = stats::mean_sd(&v);
                if sd > 0.0 {
                    (1.0 / sd) as f32
                } else {
                    1.0
                }
            })
            .collect();
        let offsets: Vec<usize> = rows
            .categories
            .levels
            .iter()
            .scan(rows.x.ncols(), |at, &l| {
                let here = *at;
                *at += l as usize;
                Some(here)
            })
            .collect();
        let width = rows.x.ncols() + rows.categories.levels.iter().sum::<u32>() as usize;
        Space {
            x: rows.x,
            codes: rows.categories.codes,
            scale,
            offsets,
            width,
        }
    }

    /// Rows `of` in standard units.
    fn rows(&self, of: &[usize]) -> Array2<f32> {
        let mut data = Array2::zeros((of.len(), self.width));
        for (&i, mut out) in of.iter().zip(data.rows_mut()) {
            for (j, s) in self.scale.iter().enumerate() {
                out[j] = self.x[[i, j]] * s;
            }
            for (j, &at) in self.offsets.iter().enumerate() {
                out[at + self.codes[[i, j]] as usize] = ONE_HOT;
            }
        }
        data
    }

    /// The distance between rows `a` and `b`, in f64.
    fn distance(&self, a: usize, b: usize) -> f64 {
        let x = &self.x;
        let numeric: f64 = self
            .scale
            .iter()
            .enumerate()
            .map(|(j, s)| (f64::from(x[[a, j]] * s) - f64::from(x[[b, j]] * s)).powi(2))
            .sum();
        let codes = &self.codes;
        let differing = (0..self.offsets.len())
            .filter(|&j| codes[[a, j]] != codes[[b, j]])
            .count();
        (numeric + 2.0 * differing as f64 * f64::from(ONE_HOT).powi(2)).sqrt()
    }
}

/// The rows of one class and the real rows of the others, as row numbers.
pub(super) struct Sets<'a> {
    pub(super) real: &'a [usize],
    pub(super) synthetic: &'a [usize],
    pub(super) others: &'a [usize],
}

/// At most [`SAMPLE`] of `rows`, a seeded uniform choice, in row order.
fn sample(rows: &[usize], class_no: usize, kind: u32) -> Vec<usize> {
    if rows.len() <= SAMPLE {
        return rows.to_vec();
    }
    let stream = Stream::new(u64::from(kind), Purpose::Report, class_no as u32);
    let mut picked: Vec<usize> = permutation(&stream, rows.len())[..SAMPLE]
        .iter()
        .map(|&i| rows[i as usize])
        .collect();
    picked.sort_unstable();
    picked
}

/// Fills the distance statistics of `c` and the projection of its picture.
pub(super) fn closeness(
    device: &Device,
    space: &Space<'_>,
    sets: &Sets<'_>,
    class_no: usize,
    c: &mut ClassReport,
) -> Result<()> {
    let synthetic = sample(sets.synthetic, class_no, 0);
    let queried_real = sample(sets.real, class_no, 1);
    let class_refs = space.rows(sets.real);
    let (syn_x, real_x) = (space.rows(&synthetic), space.rows(&queried_real));

    // Synthetic rows: their nearest real row of the class.
    let nn = nearest_in(device, syn_x.view(), class_refs.view(), 1)?;
    let mut covered = vec![false; sets.real.len()];
    let syn_d: Vec<f64> = synthetic
        .iter()
        .zip(nn.column(0))
        .map(|(&s, &r)| {
            covered[r as usize] = true;
            space.distance(s, sets.real[r as usize])
        })
        .collect();
    // Real rows: their nearest other real row of the class (the row itself is one of the two
    // nearest; a duplicate of it may come first).
    let nn = nearest_in(device, real_x.view(), class_refs.view(), 2)?;
    let real_d: Vec<f64> = queried_real
        .iter()
        .zip(nn.rows())
        .map(|(&q, pair)| {
            let other = if sets.real[pair[0] as usize] == q {
                pair[1]
            } else {
                pair[0]
            };
            space.distance(q, sets.real[other as usize])
        })
        .collect();
    let threshold = stats::quantile(&real_d, 0.05);
    let share = |count: usize, of: usize| count as f64 / of.max(1) as f64;
    // Overlap: nearer a real row of another class than the nearest of its own.
    let (overlap, real_overlap) = if sets.others.is_empty() {
        (0.0, 0.0)
    } else {
        let other_refs = space.rows(sets.others);
        let nearer = |queries: &[usize], x: &Array2<f32>, own: &[f64]| -> Result<usize> {
            let nn = nearest_in(device, x.view(), other_refs.view(), 1)?;
            Ok(queries
                .iter()
                .zip(nn.column(0))
                .zip(own)
                .filter(|((&q, &o), &d)| space.distance(q, sets.others[o as usize]) < d)
                .count())
        };
        (
            share(nearer(&synthetic, &syn_x, &syn_d)?, synthetic.len()),
            share(nearer(&queried_real, &real_x, &real_d)?, queried_real.len()),
        )
    };
    c.closeness = Some(Closeness {
        synthetic_compared: synthetic.len(),
        real_compared: queried_real.len(),
        synthetic_to_real_median: stats::quantile(&syn_d, 0.5),
        real_to_real_median: stats::quantile(&real_d, 0.5),
        near_copy_distance: threshold,
        near_copies: share(
            syn_d.iter().filter(|&&d| d < threshold).count(),
            syn_d.len(),
        ),
        exact_copies: share(syn_d.iter().filter(|&&d| d == 0.0).count(), syn_d.len()),
        coverage: share(covered.iter().filter(|&&c| c).count(), covered.len()),
        overlap,
        real_overlap,
    });

    // The picture: both kinds on the real rows' first two principal axes.
    let d = space.width;
    let flat = real_x.as_standard_layout();
    let ([a, b], shares, mean) =
        stats::principal_axes(flat.as_slice().expect("standard layout"), d);
    let project = |x: &Array2<f32>| -> Vec<(f32, f32)> {
        x.rows()
            .into_iter()
            .map(|r| {
                let dot = |axis: &[f64]| {
                    r.iter()
                        .zip(axis)
                        .zip(&mean)
                        .map(|((&v, w), m)| (f64::from(v) - m) * w)
                        .sum::<f64>()
                };
                (dot(&a) as f32, dot(&b) as f32)
            })
            .collect()
    };
    c.view.real_points = project(&real_x);
    c.view.synthetic_points = project(&syn_x);
    c.view.shares = shares;
    Ok(())
}
