//! SMOTE-N (Chawla et al., 2002, section 6.2), for rows whose every feature is categorical:
//! neighbours by the value difference metric, and each synthetic row the most frequent value of
//! each column among a random row's neighbours.

use ndarray::{Array2, ArrayView2};

use crate::rng::{below, Stream};

/// The value difference metric of each column, squared, as a `levels x levels` table per column:
/// `delta(a, b) = sum over classes c of |P(c | a) - P(c | b)|` (Cost and Salzberg's MVDM with
/// `k = 1`), the class frequencies counted over every row. The distance between two rows is
/// `sqrt(sum over columns of delta^2)` (imbalanced-learn's `r = 2`).
pub(super) fn value_differences(
    codes: ArrayView2<'_, u32>,
    levels: &[u32],
    class_of_row: &[usize],
    classes: usize,
) -> Vec<Vec<f32>> {
    codes
        .columns()
        .into_iter()
        .zip(levels)
        .map(|(col, &l)| {
            let l = l as usize;
            let mut counts = vec![0.0f64; l * classes];
            for (&v, &c) in col.iter().zip(class_of_row) {
                counts[v as usize * classes + c] += 1.0;
            }
            let p: Vec<f64> = counts
                .chunks(classes)
                .flat_map(|row| {
                    let total: f64 = row.iter().sum();
                    row.iter()
                        .map(move |&n| if total > 0.0 { n / total } else { 0.0 })
                })
                .collect();
            let mut table = vec![0.0f32; l * l];
            for a in 0..l {
                for b in 0..l {
                    let d: f64 = (0..classes)
                        .map(|c| (p[a * classes + c] - p[b * classes + c]).abs())
                        .sum();
                    table[a * l + b] = (d * d) as f32;
                }
            }
            table
        })
        .collect()
}

/// The `k` nearest other rows of each row of `codes` (one class's rows) under the tables of
/// [`value_differences`], nearest first, ties to the lower index. A direct search on the CPU
/// (every pair): the metric is not a Euclidean distance of any fixed embedding when there are more
/// than two classes, so the neighbour engine of [`crate::knn`] cannot run it.
pub(super) fn nominal_neighbors(
    codes: ArrayView2<'_, u32>,
    levels: &[u32],
    tables: &[Vec<f32>],
    k: usize,
) -> Array2<u32> {
    let n = codes.nrows();
    let rows: Vec<usize> = (0..n).collect();
    let lists = crate::parallel::parallel_map(&rows, |&i| {
        let a = codes.row(i);
        let mut d: Vec<(f32, u32)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let b = codes.row(j);
                let s: f32 = (0..a.len())
                    .map(|f| tables[f][(a[f] * levels[f] + b[f]) as usize])
                    .sum();
                (s, j as u32)
            })
            .collect();
        let by = |x: &(f32, u32), y: &(f32, u32)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
        if d.len() > k {
            d.select_nth_unstable_by(k - 1, by);
            d.truncate(k);
        }
        d.sort_unstable_by(by);
        d.into_iter().map(|(_, j)| j).collect::<Vec<u32>>()
    });
    Array2::from_shape_vec((n, k), lists.concat()).expect("k neighbours per row")
}

/// The base row (an index into the class's rows) of each of `n` synthetic rows: word 0 of block
/// `s` of `stream` chooses row `s`'s, as SMOTE does.
pub(super) fn bases(rows: usize, n: usize, stream: Stream) -> Vec<u32> {
    (0..n)
        .map(|s| below(stream.block(s as u64)[0], rows as u32))
        .collect()
}
