//! The data of `shared/bench/smote_speed.py`, shared by the sampler benchmarks.

use ndarray::Array2;
use smrt::rng::{Purpose, Stream};

/// `rows` rows of `features` Gaussian features, majority:minority 20:1, the minority (label 1,
/// the first rows) shifted by 1 on every feature.
pub fn imbalanced(rows: usize, features: usize) -> (Array2<f32>, Vec<u8>) {
    let minority = (rows as f64 / 21.0).round() as usize;
    let s = Stream::new(0, Purpose::Init, 0);
    let x = Array2::from_shape_fn((rows, features), |(i, j)| {
        s.normal_at((i * features + j) as u64) + if i < minority { 1.0 } else { 0.0 }
    });
    let y = (0..rows).map(|i| u8::from(i < minority)).collect();
    (x, y)
}
