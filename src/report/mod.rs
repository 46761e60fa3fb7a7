//! How close the synthetic rows of each class are to its real rows, and how far from copies.
//!
//! For every class that received synthetic rows, [`report`] compares them with the class's real
//! rows:
//! - **fidelity per feature**: mean and standard deviation, real and synthetic, the ratio of the
//!   deviations, the two-sample Kolmogorov-Smirnov statistic; for categorical columns the
//!   total-variation distance of the category frequencies;
//! - **joint structure**: the largest and the mean absolute difference between the real and the
//!   synthetic correlation matrices (numeric columns that vary in both);
//! - **closeness**, in standard units (each numeric column divided by its standard deviation over
//!   all real rows; a categorical column one-hot at `1/sqrt 2`, so that a differing category
//!   counts as one standard unit), with exact nearest neighbours on the device: each synthetic
//!   row's distance to its nearest real row of the class against the real rows' own
//!   nearest-neighbour distances; **near-copies**, the share of synthetic rows closer to a real
//!   row than the 5th percentile of the real rows' nearest-neighbour distances (a fresh sample of
//!   the class would show about 5%), and **exact copies**; **coverage**, the share of real rows
//!   that are the nearest real row of at least one synthetic row; **overlap**, the share of
//!   synthetic rows whose nearest real row belongs to another class, beside the same share for
//!   the class's real rows;
//! - a one-line **verdict** (thresholds in [`Thresholds`]).
//!
//! Distances are computed for at most [`SAMPLE`] synthetic and [`SAMPLE`] real rows per class (a
//! seeded uniform sample when there are more), so the shares are estimates within about one
//! and a half percentage points (95%) on large classes, and a report stays fast on any size.
//!
//! ```
//! use smrt::report::{report, Columns, Rows};
//! use smrt::{Categories, Device};
//! let x = ndarray::array![[0.0f32, 1.0], [1.0, 0.0], [0.5, 0.5], [9.0, 9.0], [0.5, 0.5]];
//! let y = ["a", "a", "a", "b", "a"];
//! let synthetic = [false, false, false, false, true]; // the last row copies row 2
//! let rows = Rows { x: x.view(), categories: Categories::none(5), y: &y, synthetic: &synthetic };
//! let r = report(&Device::Cpu, &rows, &Columns::numbered(2, 0))?;
//! let class = &r.classes[0];
//! assert_eq!((class.class.as_str(), class.real_rows, class.synthetic_rows), ("a", 3, 1));
//! assert_eq!(class.closeness.as_ref().unwrap().exact_copies, 1.0);
//! # Ok::<(), smrt::Error>(())
//! ```

mod closeness;
mod picture;
mod render;
mod stats;

use closeness::{closeness, Sets, Space};

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

use ndarray::ArrayView2;
use serde::Serialize;

use crate::balance::Categories;
use crate::engine::Device;
use crate::error::{Error, Result};
use crate::strategy::Label;

/// The most synthetic rows, and the most real rows, per class whose distances are computed.
pub const SAMPLE: usize = 5_000;

/// The features a picture shows histograms of (those with the largest KS statistic).
pub const HISTOGRAMS: usize = 12;

/// The rows a report compares.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a, L> {
    /// Numeric columns, one row per row.
    pub x: ArrayView2<'a, f32>,
    /// Categorical columns ([`Categories::none`] when there are none).
    pub categories: Categories<'a>,
    /// The class of each row.
    pub y: &'a [L],
    /// Which rows are synthetic.
    pub synthetic: &'a [bool],
}

/// The names of the columns of [`Rows`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// One per numeric column.
    pub numeric: Vec<String>,
    /// One per categorical column.
    pub categorical: Vec<String>,
}

impl Columns {
    /// `x0, x1, ...` for the numeric columns, `c0, c1, ...` for the categorical ones.
    pub fn numbered(numeric: usize, categorical: usize) -> Self {
        Columns {
            numeric: (0..numeric).map(|i| format!("x{i}")).collect(),
            categorical: (0..categorical).map(|i| format!("c{i}")).collect(),
        }
    }
}

/// The limits past which a verdict names a problem.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Fewer synthetic rows than this in a class: its numbers are shown, no verdict is drawn.
    pub min_rows: usize,
    /// Near-copies above this share (twice what a fresh sample of the class would show).
    pub near_copies: f64,
    /// Exact copies above this share.
    pub exact_copies: f64,
    /// Overlap above the real rows' own overlap by more than this share.
    pub overlap: f64,
    /// A feature's KS statistic above this.
    pub ks: f64,
    /// A feature's synthetic / real standard deviation outside `[1 / sd_ratio, sd_ratio]`.
    pub sd_ratio: f64,
    /// A correlation differing by more than this.
    pub correlation: f64,
    /// A categorical column's total-variation distance above this.
    pub total_variation: f64,
    /// Coverage below this share, when there are at least as many synthetic rows as real ones.
    pub coverage: f64,
}

/// The thresholds of every verdict.
pub const THRESHOLDS: Thresholds = Thresholds {
    min_rows: 20,
    near_copies: 0.10,
    exact_copies: 0.01,
    overlap: 0.05,
    ks: 0.25,
    sd_ratio: 2.0,
    correlation: 0.3,
    total_variation: 0.2,
    coverage: 0.25,
};

/// A report: one entry per class that has synthetic rows, in label order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The classes.
    pub classes: Vec<ClassReport>,
    /// The limits the verdicts use.
    pub thresholds: Thresholds,
    /// The most rows per class and kind whose distances are computed ([`SAMPLE`]).
    pub sample: usize,
}

/// What a report says about one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    /// The label.
    pub class: String,
    /// Real rows of the class.
    pub real_rows: usize,
    /// Synthetic rows of the class.
    pub synthetic_rows: usize,
    /// One per numeric column, in column order.
    pub numeric: Vec<NumericFit>,
    /// One per categorical column, in column order.
    pub categorical: Vec<CategoricalFit>,
    /// The correlation matrices compared; `None` with fewer than two columns that vary in both.
    pub correlation: Option<CorrelationGap>,
    /// Distances; `None` when the class has fewer than two real rows.
    pub closeness: Option<Closeness>,
    /// Problems found (empty when none), each a short sentence.
    pub problems: Vec<String>,
    /// One line: "ok: ..." or the problems.
    pub verdict: String,
    #[serde(skip)]
    view: View,
}

/// One numeric column of one class.
#[derive(Debug, Clone, Serialize)]
pub struct NumericFit {
    /// Column name.
    pub name: String,
    /// Mean of the real rows.
    pub real_mean: f64,
    /// Standard deviation of the real rows.
    pub real_sd: f64,
    /// Mean of the synthetic rows.
    pub synthetic_mean: f64,
    /// Standard deviation of the synthetic rows.
    pub synthetic_sd: f64,
    /// `synthetic_sd / real_sd`; `None` where the column is constant in the real rows.
    pub sd_ratio: Option<f64>,
    /// Two-sample Kolmogorov-Smirnov statistic.
    pub ks: f64,
}

/// One categorical column of one class.
#[derive(Debug, Clone, Serialize)]
pub struct CategoricalFit {
    /// Column name.
    pub name: String,
    /// Total-variation distance of the category frequencies.
    pub total_variation: f64,
}

/// The real and synthetic correlation matrices compared.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationGap {
    /// Columns compared (numeric, not constant in either kind of row).
    pub columns: usize,
    /// The largest absolute difference.
    pub max: f64,
    /// The pair of columns where it is.
    pub pair: (String, String),
    /// The mean absolute difference over the pairs.
    pub mean: f64,
}

/// Distances between rows, in standard units (see the module documentation).
#[derive(Debug, Clone, Serialize)]
pub struct Closeness {
    /// Synthetic rows whose distances were computed (all, or a sample of [`SAMPLE`]).
    pub synthetic_compared: usize,
    /// Real rows whose nearest-neighbour distances were computed.
    pub real_compared: usize,
    /// Median distance from a synthetic row to its nearest real row of the class.
    pub synthetic_to_real_median: f64,
    /// Median distance from a real row to its nearest other real row of the class.
    pub real_to_real_median: f64,
    /// The 5th percentile of the real rows' nearest-neighbour distances.
    pub near_copy_distance: f64,
    /// Share of synthetic rows closer to a real row than `near_copy_distance`.
    pub near_copies: f64,
    /// Share of synthetic rows equal to a real row of the class (distance 0).
    pub exact_copies: f64,
    /// Share of real rows that are the nearest real row of at least one compared synthetic row.
    pub coverage: f64,
    /// Share of synthetic rows whose nearest real row belongs to another class.
    pub overlap: f64,
    /// Share of real rows whose nearest other real row belongs to another class.
    pub real_overlap: f64,
}

/// What the picture of a class draws (kept from the computation, not serialised).
#[derive(Debug, Clone, Default)]
struct View {
    /// Real and synthetic rows on the first two principal axes of the real rows.
    real_points: Vec<(f32, f32)>,
    synthetic_points: Vec<(f32, f32)>,
    /// Variance share of each axis.
    shares: [f64; 2],
    /// The numeric columns with the largest KS first: (name, KS, real values, synthetic values).
    histograms: Vec<(String, f64, Vec<f32>, Vec<f32>)>,
}

/// Compares the synthetic rows of each class with its real rows; see the module documentation.
/// An error when no row is synthetic, or when the shapes disagree.
pub fn report<L: Label + Display>(
    device: &Device,
    rows: &Rows<'_, L>,
    columns: &Columns,
) -> Result<Report> {
    let n = rows.x.nrows();
    for (what, expected, got) in [
        ("labels", n, rows.y.len()),
        ("synthetic marks", n, rows.synthetic.len()),
        (
            "numeric column names",
            rows.x.ncols(),
            columns.numeric.len(),
        ),
        (
            "categorical column names",
            rows.categories.codes.ncols(),
            columns.categorical.len(),
        ),
    ] {
        if expected != got {
            return Err(Error::ShapeMismatch {
                what,
                expected,
                got,
            });
        }
    }
    rows.categories.check(n)?;
    if rows.x.ncols() > 0 {
        crate::check::finite_matrix(rows.x)?;
    }
    let mut by_class: BTreeMap<&L, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, (label, &synthetic)) in rows.y.iter().zip(rows.synthetic).enumerate() {
        let entry = by_class.entry(label).or_default();
        if synthetic {
            entry.1.push(i);
        } else {
            entry.0.push(i);
        }
    }
    if by_class.values().all(|(_, s)| s.is_empty()) {
        return Err(Error::DataModel(
            "no synthetic rows: nothing to report (mark them with a column, a provenance file or a file of the real rows)".into(),
        ));
    }
    let space = Space::new(rows);
    let real_all: Vec<usize> = (0..n).filter(|&i| !rows.synthetic[i]).collect();
    let mut classes = Vec::new();
    for (class_no, (label, (real, synthetic))) in by_class.iter().enumerate() {
        if synthetic.is_empty() {
            continue;
        }
        let mut c = ClassReport {
            class: label.to_string(),
            real_rows: real.len(),
            synthetic_rows: synthetic.len(),
            numeric: Vec::new(),
            categorical: Vec::new(),
            correlation: None,
            closeness: None,
            problems: Vec::new(),
            verdict: String::new(),
            view: View::default(),
        };
        if real.is_empty() {
            c.problems
                .push("no real rows of this class to compare with".into());
        } else {
            fidelity(rows, columns, real, synthetic, &mut c);
            if space.width == 0 {
                c.problems.push("no columns to compare".into());
            } else if real.len() >= 2 {
                let others: Vec<usize> = real_all
                    .iter()
                    .copied()
                    .filter(|&i| rows.y[i] != **label)
                    .collect();
                let sets = Sets {
                    real,
                    synthetic,
                    others: &others,
                };
                closeness(device, &space, &sets, class_no, &mut c)?;
            } else {
                c.problems
                    .push("one real row: no nearest-neighbour distances between real rows".into());
            }
            judge(&mut c, &THRESHOLDS);
        }
        c.verdict = if c.problems.is_empty() {
            "ok: close to the real rows of the class, and not copies of them".into()
        } else {
            c.problems.join("; ")
        };
        classes.push(c);
    }
    Ok(Report {
        classes,
        thresholds: THRESHOLDS,
        sample: SAMPLE,
    })
}

/// Fills the per-column statistics and the correlation gap of `c`.
fn fidelity<L>(
    rows: &Rows<'_, L>,
    columns: &Columns,
    real: &[usize],
    synthetic: &[usize],
    c: &mut ClassReport,
) {
    let column =
        |j: usize, of: &[usize]| -> Vec<f32> { of.iter().map(|&i| rows.x[[i, j]]).collect() };
    let mut varying = Vec::new();
    let mut values = Vec::new();
    for (j, name) in columns.numeric.iter().enumerate() {
        let (a, b) = (column(j, real), column(j, synthetic));
        let ((real_mean, real_sd), (synthetic_mean, synthetic_sd)) =
            (stats::mean_sd(&a), stats::mean_sd(&b));
        let fit = NumericFit {
            name: name.clone(),
            real_mean,
            real_sd,
            synthetic_mean,
            synthetic_sd,
            sd_ratio: (real_sd > 0.0).then(|| synthetic_sd / real_sd),
            ks: stats::ks(&a, &b),
        };
        if real_sd > 0.0 && synthetic_sd > 0.0 && real.len() > 1 && synthetic.len() > 1 {
            varying.push(j);
        }
        c.numeric.push(fit);
        values.push((a, b));
    }
    for (j, name) in columns.categorical.iter().enumerate() {
        let codes = |of: &[usize]| -> Vec<u32> {
            of.iter().map(|&i| rows.categories.codes[[i, j]]).collect()
        };
        c.categorical.push(CategoricalFit {
            name: name.clone(),
            total_variation: stats::total_variation(
                &codes(real),
                &codes(synthetic),
                rows.categories.levels[j] as usize,
            ),
        });
    }
    if varying.len() >= 2 {
        let pick = |second: bool| -> Vec<&[f32]> {
            varying
                .iter()
                .map(|&j| {
                    if second {
                        values[j].1.as_slice()
                    } else {
                        values[j].0.as_slice()
                    }
                })
                .collect()
        };
        let (ra, rb) = (
            stats::correlation(&pick(false)),
            stats::correlation(&pick(true)),
        );
        let k = varying.len();
        let (mut max, mut pair, mut sum, mut pairs) = (0.0f64, (0, 1), 0.0, 0usize);
        for a in 0..k {
            for b in a + 1..k {
                let gap = (ra[a * k + b] - rb[a * k + b]).abs();
                sum += gap;
                pairs += 1;
                if gap > max {
                    (max, pair) = (gap, (a, b));
                }
            }
        }
        c.correlation = Some(CorrelationGap {
            columns: k,
            max,
            pair: (
                columns.numeric[varying[pair.0]].clone(),
                columns.numeric[varying[pair.1]].clone(),
            ),
            mean: sum / pairs as f64,
        });
    }
    let mut order: Vec<usize> = (0..c.numeric.len()).collect();
    order.sort_by(|&a, &b| c.numeric[b].ks.total_cmp(&c.numeric[a].ks));
    let mut values: Vec<Option<(Vec<f32>, Vec<f32>)>> = values.into_iter().map(Some).collect();
    c.view.histograms = order
        .into_iter()
        .take(HISTOGRAMS)
        .map(|j| {
            let (a, b) = values[j].take().expect("each column once");
            (c.numeric[j].name.clone(), c.numeric[j].ks, a, b)
        })
        .collect();
}

/// Names the problems of `c` by the thresholds `t`.
fn judge(c: &mut ClassReport, t: &Thresholds) {
    if c.synthetic_rows < t.min_rows {
        c.problems.push(format!(
            "{} synthetic rows: too few to judge (at least {} needed)",
            c.synthetic_rows, t.min_rows
        ));
        return;
    }
    let pct = |v: f64| format!("{:.0}%", 100.0 * v);
    if let Some(k) = &c.closeness {
        if k.exact_copies > t.exact_copies {
            c.problems.push(format!(
                "exact copies {}: synthetic rows repeat real rows",
                pct(k.exact_copies)
            ));
        } else if k.near_copies > t.near_copies {
            c.problems.push(format!(
                "near-copies {} (a fresh sample would show about 5%): synthetic rows sit on real ones; with SMRT try a higher temperature",
                pct(k.near_copies)
            ));
        }
        if k.overlap > k.real_overlap + t.overlap {
            c.problems.push(format!(
                "overlap {} (real rows: {}): synthetic rows lie nearer another class",
                pct(k.overlap),
                pct(k.real_overlap)
            ));
        }
        if k.synthetic_compared >= c.real_rows && k.coverage < t.coverage {
            c.problems.push(format!(
                "coverage {}: the synthetic rows crowd a few real rows",
                pct(k.coverage)
            ));
        }
    }
    if let Some(worst) = c.numeric.iter().max_by(|a, b| a.ks.total_cmp(&b.ks)) {
        if worst.ks > t.ks {
            c.problems
                .push(format!("{} differs most (KS {:.2})", worst.name, worst.ks));
        }
    }
    let spread: Vec<String> = c
        .numeric
        .iter()
        .filter_map(|f| {
            let r = f.sd_ratio?;
            (r > t.sd_ratio || r < 1.0 / t.sd_ratio).then(|| format!("{} {r:.2}", f.name))
        })
        .collect();
    if !spread.is_empty() {
        c.problems.push(format!(
            "spread against the real rows: {}",
            abbreviate(&spread, 3)
        ));
    }
    if let Some(g) = &c.correlation {
        if g.max > t.correlation {
            c.problems.push(format!(
                "correlation of {} and {} differs by {:.2}",
                g.pair.0, g.pair.1, g.max
            ));
        }
    }
    if let Some(worst) = c
        .categorical
        .iter()
        .max_by(|a, b| a.total_variation.total_cmp(&b.total_variation))
    {
        if worst.total_variation > t.total_variation {
            c.problems.push(format!(
                "categories of {} differ (total variation {:.2})",
                worst.name, worst.total_variation
            ));
        }
    }
}

/// The first `n` items, and how many more.
fn abbreviate(items: &[String], n: usize) -> String {
    let mut s = items[..items.len().min(n)].join(", ");
    if items.len() > n {
        let _ = write!(s, " and {} more", items.len() - n);
    }
    s
}

#[cfg(test)]
mod tests;
