//! Per-feature scalers with an exact inverse: the VAE trains on scaled data and returns rows in the
//! original units.

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// How features are scaled before training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// `(x - min) / (max - min)`, into [0, 1].
    MinMax,
    /// `(x - mean) / std` (population standard deviation).
    #[default]
    Standard,
    /// No scaling.
    None,
}

/// A fitted scaler: `scaled = (x - offset) / scale` per column.
///
/// Constant columns get scale 1, so they map to 0 and back to their value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    kind: Scaling,
    offset: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    /// Number of columns it scales.
    pub fn len(&self) -> usize {
        self.offset.len()
    }

    /// Whether it scales no columns.
    pub fn is_empty(&self) -> bool {
        self.offset.is_empty()
    }

    /// Fits `kind` to the columns of `x`.
    pub fn fit(kind: Scaling, x: ArrayView2<'_, f32>) -> Scaler {
        let cols = x.ncols();
        let (offset, scale) = match kind {
            Scaling::None => (vec![0.0; cols], vec![1.0; cols]),
            Scaling::MinMax => x
                .axis_iter(Axis(1))
                .map(|c| {
                    let lo = c.iter().copied().fold(f32::INFINITY, f32::min);
                    let hi = c.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    (lo, nonzero(hi - lo))
                })
                .unzip(),
            Scaling::Standard => x
                .axis_iter(Axis(1))
                .map(|c| {
                    let n = c.len() as f64;
                    let mean = c.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                    let var = c
                        .iter()
                        .map(|&v| (f64::from(v) - mean).powi(2))
                        .sum::<f64>()
                        / n;
                    (mean as f32, nonzero(var.sqrt() as f32))
                })
                .unzip(),
        };
        Scaler {
            kind,
            offset,
            scale,
        }
    }

    /// The identity scaler on `cols` columns.
    pub fn identity(cols: usize) -> Scaler {
        Scaler {
            kind: Scaling::None,
            offset: vec![0.0; cols],
            scale: vec![1.0; cols],
        }
    }

    /// Which scaling this is.
    pub fn kind(&self) -> Scaling {
        self.kind
    }

    /// Per-column offsets (subtracted first).
    pub fn offset(&self) -> &[f32] {
        &self.offset
    }

    /// Per-column scales (divided by second).
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// `(x - offset) / scale`.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut out = x.to_owned();
        for mut row in out.rows_mut() {
            for ((v, &o), &s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = (*v - o) / s;
            }
        }
        out
    }

    /// `x * scale + offset`, in place on row-major data of this scaler's width; a value past
    /// f32's range (data near its limits) saturates at `±f32::MAX` instead of becoming infinite.
    pub fn inverse_in_place(&self, data: &mut [f32]) {
        if self.scale.is_empty() {
            return; // no columns: nothing to scale
        }
        for row in data.chunks_exact_mut(self.scale.len()) {
            for ((v, &o), &s) in row.iter_mut().zip(&self.offset).zip(&self.scale) {
                *v = (*v * s + o).clamp(-f32::MAX, f32::MAX);
            }
        }
    }
}

fn nonzero(s: f32) -> f32 {
    if s > 0.0 && s.is_finite() {
        s
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn scalers_map_and_invert() {
        let x = array![[1.0f32, 5.0, 3.0], [3.0, 5.0, -1.0], [2.0, 5.0, 1.0]];
        for kind in [Scaling::MinMax, Scaling::Standard, Scaling::None] {
            let s = Scaler::fit(kind, x.view());
            let t = s.transform(x.view());
            let mut back = t.clone().into_raw_vec_and_offset().0;
            s.inverse_in_place(&mut back);
            for (a, b) in back.iter().zip(x.iter()) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{kind:?}: {a} vs {b}"
                );
            }
            if kind == Scaling::MinMax {
                assert_eq!(t.column(0).to_vec(), vec![0.0, 1.0, 0.5]);
                assert_eq!(t.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
            }
            if kind == Scaling::Standard {
                // mean 2, population std sqrt(2/3)
                let sd = (2.0f32 / 3.0).sqrt();
                assert!((t[[0, 0]] + 1.0 / sd).abs() < 1e-6);
            }
        }
    }
}
