//! [`Generation::Auto`]: each class's generation chosen from a held-out fifth of its rows.

use ndarray::{Array2, ArrayView2, Axis};

use super::Smrt;
use crate::engine::Device;
use crate::error::Result;
use crate::rng::{permutation, Purpose, Stream};
use crate::strategy::Label;
use crate::vae::{FitJob, Generation, Sampling, Vae, VaeConfig};

impl<L: Label> Smrt<L> {
    /// [`Generation::Auto`]'s choice for one class, from `model`, fitted on four fifths of it:
    /// prior-residual where its draws come nearer the held-out fifth than the prior's by more
    /// than two standard errors of the held-out rows' sampling (energy distance over the
    /// numeric columns, in the fitted rows' standard units); otherwise the prior. A few
    /// held-out rows cannot tell the two apart, and then the prior, the better on small
    /// classes, stays.
    pub(super) fn choose(
        &self,
        device: &Device,
        model: &Vae,
        choice: &Choice,
    ) -> Result<Generation> {
        let fit_x = &choice.x;
        let mean = fit_x.mean_axis(Axis(0)).expect("rows to fit");
        let sd = fit_x
            .std_axis(Axis(0), 0.0)
            .mapv(|v| if v > 0.0 { v } else { 1.0 });
        let standard = |a: ArrayView2<'_, f32>| (&a - &mean) / &sd;
        let held_out = standard(choice.held.view());
        let draws = (4 * choice.held.nrows()).clamp(200, 1000);
        let mut drawn = Vec::with_capacity(2);
        for generation in [Generation::Prior, Generation::PriorResidual] {
            let sampling = Sampling {
                generation,
                ..self.sampling
            };
            let (rows, _, _) = model.sample_mixed_on(
                device,
                fit_x.view(),
                choice.codes.view(),
                draws,
                model.config().seed,
                &sampling,
            )?;
            drawn.push(standard(rows.view()));
        }
        let (gain, se) = energy_gain(drawn[0].view(), drawn[1].view(), held_out.view());
        Ok(if gain > 2.0 * se {
            Generation::PriorResidual
        } else {
            Generation::Prior
        })
    }
}

/// [`Generation::Auto`]'s split of a class: a model is fitted on four fifths of its rows, and
/// the generation whose draws come nearer the other fifth is chosen.
pub(super) struct Choice {
    /// The rows the held-out model is fitted on, and their codes.
    x: Array2<f32>,
    codes: Array2<u32>,
    /// The held-out rows compared with (at most 500: the distance costs rows squared).
    held: Array2<f32>,
}

impl Choice {
    /// The fit of the held-out model, with the class's settings.
    pub(super) fn job(&self, config: &VaeConfig) -> FitJob<'_> {
        FitJob::new(self.x.view(), config.clone()).with_codes(self.codes.view())
    }

    /// The split of a class's rows, or `None` for a class too small to split (under 10 rows)
    /// or without numeric columns: it draws from the prior.
    pub(super) fn split(
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        config: &VaeConfig,
    ) -> Option<Choice> {
        let n = x.nrows();
        if n < 10 || x.ncols() == 0 {
            return None;
        }
        let order = permutation(&Stream::new(config.seed, Purpose::Choose, 0), n);
        let held = n / 5;
        let (held_rows, fit_rows): (Vec<usize>, Vec<usize>) = (
            order[..held].iter().map(|&i| i as usize).collect(),
            order[held..].iter().map(|&i| i as usize).collect(),
        );
        Some(Choice {
            x: x.select(Axis(0), &fit_rows),
            codes: codes.select(Axis(0), &fit_rows),
            held: x.select(Axis(0), &held_rows[..held.min(500)]),
        })
    }
}

/// How much nearer the rows of `b` are to the rows of `held` than those of `a` are, and the
/// standard error of that from the sampling of the held-out rows.
///
/// The gain is `E(a, held) - E(b, held)` with `E` the energy distance
/// `2 E|X - Y| - E|X - X'| - E|Y - Y'|` (Szekely and Rizzo; Euclidean norms), which is
/// `2 mean_h (m_a(h) - m_b(h)) - (E|A - A'| - E|B - B'|)` with `m(h)` the mean distance of the
/// draws to held-out row `h`. The held-out rows are few and the draws many, so the error is
/// that of the mean over `h`: `2 sd_h(m_a(h) - m_b(h)) / sqrt(rows)`.
fn energy_gain(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    held: ArrayView2<'_, f32>,
) -> (f64, f64) {
    let mean_norm_to = |p: ArrayView2<'_, f32>, t: ndarray::ArrayView1<'_, f32>| {
        let total: f64 = p
            .rows()
            .into_iter()
            .map(|r| {
                let d2: f32 = r.iter().zip(t).map(|(x, y)| (x - y) * (x - y)).sum();
                f64::from(d2).sqrt()
            })
            .sum();
        total / p.nrows() as f64
    };
    let diffs: Vec<f64> = held
        .rows()
        .into_iter()
        .map(|h| mean_norm_to(a, h) - mean_norm_to(b, h))
        .collect();
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let var = diffs.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    let self_term = |p: ArrayView2<'_, f32>| {
        p.rows()
            .into_iter()
            .map(|r| mean_norm_to(p, r))
            .sum::<f64>()
            / p.nrows() as f64
    };
    let gain = 2.0 * mean - (self_term(a) - self_term(b));
    (gain, 2.0 * (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn cloud(n: usize, centre: f32, seed: u64) -> Array2<f32> {
        let s = Stream::new(seed, Purpose::Init, 0);
        Array2::from_shape_fn((n, 3), |(i, j)| centre + s.normal_at((i * 3 + j) as u64))
    }

    #[test]
    fn energy_gain_is_significant_only_where_the_held_out_rows_tell_the_draws_apart() {
        let held = cloud(60, 0.0, 1);
        let (near, far) = (cloud(400, 0.0, 2), cloud(400, 1.5, 3));
        // Draws from the held-out rows' own distribution against draws shifted away.
        let (gain, se) = energy_gain(far.view(), near.view(), held.view());
        assert!(gain > 2.0 * se && se > 0.0, "gain {gain}, se {se}");
        let (gain, se) = energy_gain(near.view(), far.view(), held.view());
        assert!(gain < -2.0 * se, "gain {gain}, se {se}");
        // Two sets of draws from one distribution: no significant gain either way.
        let twin = cloud(400, 0.0, 4);
        let (gain, se) = energy_gain(near.view(), twin.view(), held.view());
        assert!(gain.abs() < 2.0 * se, "gain {gain}, se {se}");
        // The gain is the difference of the two energy distances.
        let energy = |a: &Array2<f32>, b: &Array2<f32>| {
            let mean = |p: &Array2<f32>, q: &Array2<f32>| {
                let mut t = 0.0f64;
                for r in p.rows() {
                    for u in q.rows() {
                        let d2: f32 = r.iter().zip(u).map(|(x, y)| (x - y) * (x - y)).sum();
                        t += f64::from(d2).sqrt();
                    }
                }
                t / (p.nrows() * q.nrows()) as f64
            };
            2.0 * mean(a, b) - mean(a, a) - mean(b, b)
        };
        let (gain, _) = energy_gain(far.view(), near.view(), held.view());
        let want = energy(&far, &held) - energy(&near, &held);
        assert!(
            (gain - want).abs() < 1e-9 * want.abs().max(1.0),
            "{gain} against {want}"
        );
    }
}
