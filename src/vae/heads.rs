//! The categorical columns of a class: one softmax head each, over the categories seen in the
//! class's rows, after the numeric columns of the network's input and output.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// For each categorical column, the categories (codes of the caller's dictionary) that occur in
/// the training rows, ascending. A column becomes `seen.len()` one-hot inputs and as many
/// softmax outputs, so a model never draws a category its class did not have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heads {
    seen: Vec<Vec<u32>>,
}

impl Heads {
    /// The categories of each column of `codes`.
    pub fn observe(codes: ArrayView2<'_, u32>) -> Heads {
        let seen = codes
            .columns()
            .into_iter()
            .map(|c| {
                let mut v: Vec<u32> = c.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        Heads { seen }
    }

    /// These heads followed by `count` two-way heads (codes 0 and 1): the network's heads when
    /// `count` numeric columns take two values ([`super::Columns::binary`]).
    pub(crate) fn with_binary(&self, count: usize) -> Heads {
        let mut seen = self.seen.clone();
        seen.extend(std::iter::repeat_n(vec![0, 1], count));
        Heads { seen }
    }

    /// The number of categorical columns.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The categories seen in each column.
    pub fn seen(&self) -> &[Vec<u32>] {
        &self.seen
    }

    /// Network columns of all heads together.
    pub fn width(&self) -> usize {
        self.seen.iter().map(Vec::len).sum()
    }

    /// `[start, width]` of each head, `start` counted from network column `first`.
    pub(crate) fn spans(&self, first: usize) -> Vec<u32> {
        let mut at = first;
        let mut out = Vec::with_capacity(2 * self.len());
        for s in &self.seen {
            out.extend([at as u32, s.len() as u32]);
            at += s.len();
        }
        out
    }

    /// One-hot rows of `codes` (`rows x width`). A code the model has not seen is an error.
    pub(crate) fn one_hot(&self, codes: ArrayView2<'_, u32>) -> Result<Array2<f32>> {
        if codes.ncols() != self.len() {
            return Err(Error::ShapeMismatch {
                what: "categorical columns",
                expected: self.len(),
                got: codes.ncols(),
            });
        }
        let mut out = Array2::zeros((codes.nrows(), self.width()));
        for (mut o, row) in out.rows_mut().into_iter().zip(codes.rows()) {
            let mut at = 0;
            for (j, (&c, seen)) in row.iter().zip(&self.seen).enumerate() {
                let k = seen.binary_search(&c).map_err(|_| {
                    Error::DataModel(format!(
                        "category code {c} of categorical column {j} was not among the model's training rows"
                    ))
                })?;
                o[at + k] = 1.0;
                at += seen.len();
            }
        }
        Ok(out)
    }

    /// The code of the largest of each head's `logits` (one row of all heads, `width` values).
    pub(crate) fn argmax(&self, logits: &[f32], out: &mut [u32]) {
        let mut at = 0;
        for (o, seen) in out.iter_mut().zip(&self.seen) {
            let head = &logits[at..at + seen.len()];
            let best = (0..head.len()).fold(0, |b, k| if head[k] > head[b] { k } else { b });
            *o = seen[best];
            at += seen.len();
        }
    }

    /// A draw from each head's softmax, `uniforms` one value in [0, 1) per head.
    pub(crate) fn sample(&self, logits: &[f32], uniforms: &[f32], out: &mut [u32]) {
        let mut at = 0;
        for ((o, seen), &u) in out.iter_mut().zip(&self.seen).zip(uniforms) {
            let head = &logits[at..at + seen.len()];
            let max = head.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let total: f32 = head.iter().map(|&v| (v - max).exp()).sum();
            let mut left = u * total;
            let mut pick = seen.len() - 1;
            for (k, &v) in head.iter().enumerate() {
                let w = (v - max).exp();
                if left < w {
                    pick = k;
                    break;
                }
                left -= w;
            }
            *o = seen[pick];
            at += seen.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_spans_and_choices_follow_the_categories_seen() {
        let codes = ndarray::array![[4, 0], [1, 0], [4, 2]];
        let h = Heads::observe(codes.view());
        assert_eq!(h.seen(), &[vec![1, 4], vec![0, 2]]);
        assert_eq!(h.width(), 4);
        assert_eq!(h.spans(3), vec![3, 2, 5, 2]);
        let hot = h.one_hot(codes.view()).unwrap();
        assert_eq!(hot.row(0).to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
        assert_eq!(hot.row(2).to_vec(), vec![0.0, 1.0, 0.0, 1.0]);
        assert!(h.one_hot(ndarray::array![[3, 0]].view()).is_err());
        let mut out = [0; 2];
        h.argmax(&[0.1, 0.9, 2.0, -1.0], &mut out);
        assert_eq!(out, [4, 0]);
        // Softmax of [0, ln 3]: 1/4, 3/4; u below 1/4 takes the first category.
        let logits = [0.0, 3f32.ln(), 0.0, 3f32.ln()];
        h.sample(&logits, &[0.2, 0.3], &mut out);
        assert_eq!(out, [1, 2]);
    }
}
