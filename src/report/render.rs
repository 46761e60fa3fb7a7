//! A report as aligned text, and its files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{picture, NumericFit, Report, HISTOGRAMS};
use crate::error::{Error, Result};

impl Report {
    /// The report as aligned text: per class the verdict, closeness, correlation, the features
    /// with the largest KS statistic first (the first [`HISTOGRAMS`] unless `full`) and the
    /// categorical columns.
    pub fn text(&self, full: bool) -> String {
        let mut s = String::new();
        for c in &self.classes {
            let _ = writeln!(
                s,
                "class {}: {} real rows, {} synthetic",
                c.class, c.real_rows, c.synthetic_rows
            );
            let _ = writeln!(s, "  verdict: {}", c.verdict);
            if let Some(k) = &c.closeness {
                let sampled = if k.synthetic_compared < c.synthetic_rows {
                    format!(", a sample of {}", k.synthetic_compared)
                } else {
                    String::new()
                };
                let pct = |v: f64| format!("{:.1}%", 100.0 * v);
                let _ = writeln!(
                    s,
                    "  nearest real row (standard units{sampled}): synthetic median {:.3}, real-to-real median {:.3}",
                    k.synthetic_to_real_median, k.real_to_real_median
                );
                let _ = writeln!(
                    s,
                    "  near-copies {} (closer than {:.3}, the real rows' 5th percentile), exact copies {}",
                    pct(k.near_copies),
                    k.near_copy_distance,
                    pct(k.exact_copies)
                );
                let _ = writeln!(
                    s,
                    "  coverage {} of real rows; overlap {} of synthetic rows nearest another class (real rows: {})",
                    pct(k.coverage),
                    pct(k.overlap),
                    pct(k.real_overlap)
                );
            }
            if let Some(g) = &c.correlation {
                let _ = writeln!(
                    s,
                    "  correlation gap: largest {:.3} ({}, {}), mean {:.3} over {} columns",
                    g.max, g.pair.0, g.pair.1, g.mean, g.columns
                );
            }
            if !c.numeric.is_empty() {
                let mut order: Vec<&NumericFit> = c.numeric.iter().collect();
                order.sort_by(|a, b| b.ks.total_cmp(&a.ks));
                let shown = if full {
                    order.len()
                } else {
                    HISTOGRAMS.min(order.len())
                };
                let width = order[..shown]
                    .iter()
                    .map(|f| f.name.chars().count())
                    .max()
                    .unwrap_or(0)
                    .clamp(7, 24);
                let _ = writeln!(
                    s,
                    "  {:<width$} {:>11} {:>11} {:>11} {:>11} {:>8} {:>6}",
                    "feature", "real mean", "real sd", "synth mean", "synth sd", "sd ratio", "KS"
                );
                for f in &order[..shown] {
                    let ratio = f.sd_ratio.map_or("-".to_string(), |r| format!("{r:.2}"));
                    let _ = writeln!(
                        s,
                        "  {:<width$} {:>11} {:>11} {:>11} {:>11} {:>8} {:>6.3}",
                        clip(&f.name, width),
                        number(f.real_mean),
                        number(f.real_sd),
                        number(f.synthetic_mean),
                        number(f.synthetic_sd),
                        ratio,
                        f.ks
                    );
                }
                if shown < order.len() {
                    let _ = writeln!(
                        s,
                        "  ({} more features with smaller KS; --full shows every one)",
                        order.len() - shown
                    );
                }
            }
            for f in &c.categorical {
                let _ = writeln!(
                    s,
                    "  categorical {}: total variation {:.3}",
                    f.name, f.total_variation
                );
            }
            s.push('\n');
        }
        s
    }

    /// Draws one PNG per class into `dir` (created if missing): the real and synthetic rows on
    /// the first two principal axes of the real rows, and histograms of the [`HISTOGRAMS`]
    /// features with the largest KS statistic. Returns the files written.
    pub fn draw(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::new();
        for c in &self.classes {
            if c.closeness.is_none() && c.view.histograms.is_empty() {
                continue;
            }
            let path = dir.join(format!("class-{}.png", file_name(&c.class)));
            picture::draw(&path, c)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// A number in at most 11 characters.
fn number(v: f64) -> String {
    let s = format!("{v:.4}");
    if s.len() <= 11 {
        s
    } else {
        format!("{v:.3e}")
    }
}

/// `name` cut to `width` characters.
fn clip(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(width - 1).collect();
        s.push('~');
        s
    }
}

/// A label as part of a file name: letters, digits, `-` and `_`; anything else `_`.
fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
