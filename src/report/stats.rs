//! The statistics a report is made of, each a small function of plain slices.

/// Mean and standard deviation (population, `/ n`) of `v`; `(0, 0)` when empty.
pub fn mean_sd(v: &[f32]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// The two-sample Kolmogorov-Smirnov statistic `sup_t |F_a(t) - F_b(t)|` of the empirical
/// distribution functions of `a` and `b` (both non-empty); 0 for equal samples, 1 for samples
/// that do not overlap.
pub fn ks(a: &[f32], b: &[f32]) -> f64 {
    let sorted = |v: &[f32]| {
        let mut s = v.to_vec();
        s.sort_by(f32::total_cmp);
        s
    };
    let (a, b) = (sorted(a), sorted(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut sup) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value on both sides before comparing.
        let t = a[i].min(b[j]);
        while i < a.len() && a[i] == t {
            i += 1;
        }
        while j < b.len() && b[j] == t {
            j += 1;
        }
        sup = sup.max((i as f64 / na - j as f64 / nb).abs());
    }
    sup
}

/// Total-variation distance `1/2 sum_c |p_c - q_c|` between the category frequencies of
/// `a` and `b` (codes below `levels`).
pub fn total_variation(a: &[u32], b: &[u32], levels: usize) -> f64 {
    let freq = |v: &[u32]| {
        let mut f = vec![0.0f64; levels];
        for &c in v {
            f[c as usize] += 1.0;
        }
        let n = v.len().max(1) as f64;
        f.iter_mut().for_each(|x| *x /= n);
        f
    };
    let (p, q) = (freq(a), freq(b));
    0.5 * p.iter().zip(&q).map(|(x, y)| (x - y).abs()).sum::<f64>()
}

/// Pearson correlation matrix of the columns (each a slice of the same length, none constant),
/// row-major `c x c`.
pub fn correlation(columns: &[&[f32]]) -> Vec<f64> {
    let c = columns.len();
    let centred: Vec<Vec<f64>> = columns
        .iter()
        .map(|col| {
            let (mean, sd) = mean_sd(col);
            col.iter().map(|&x| (f64::from(x) - mean) / sd).collect()
        })
        .collect();
    let n = columns.first().map_or(1, |col| col.len()).max(1) as f64;
    let mut r = vec![0.0; c * c];
    for i in 0..c {
        r[i * c + i] = 1.0;
        for j in i + 1..c {
            let v = centred[i]
                .iter()
                .zip(&centred[j])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / n;
            r[i * c + j] = v;
            r[j * c + i] = v;
        }
    }
    r
}

/// The `q`-quantile (`0 <= q <= 1`) of `v` (non-empty), by linear interpolation between
/// order statistics.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (pos - lo as f64) * (s[hi] - s[lo])
}

/// The first two principal axes of the rows of `x` (`n x d`, row-major, `n >= 1`): unit
/// vectors in `d` dimensions, the share of the total variance along each, and the rows' mean. Power iteration
/// on `X^T X` of the centred rows, the second axis kept orthogonal to the first.
pub fn principal_axes(x: &[f32], d: usize) -> ([Vec<f64>; 2], [f64; 2], Vec<f64>) {
    let n = x.len() / d.max(1);
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let rows: Vec<Vec<f64>> = x
        .chunks_exact(d)
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, m)| f64::from(v) - m)
                .collect()
        })
        .collect();
    let total: f64 = rows.iter().flatten().map(|v| v * v).sum();
    // v <- X^T (X v), normalised.
    let step = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; d];
        for row in &rows {
            let p: f64 = row.iter().zip(v).map(|(a, b)| a * b).sum();
            out.iter_mut().zip(row).for_each(|(o, a)| *o += p * a);
        }
        out
    };
    let normalise = |v: &mut Vec<f64>| {
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|a| *a /= norm);
        }
        norm
    };
    let mut axes: [Vec<f64>; 2] = [vec![0.0; d], vec![0.0; d]];
    let mut shares = [0.0; 2];
    for a in 0..2.min(d) {
        // A start that is not orthogonal to any axis in general: 1, 1/2, 1/3, ...
        let mut v: Vec<f64> = (0..d).map(|j| 1.0 / (j + 1 + a) as f64).collect();
        let mut along = 0.0;
        for _ in 0..200 {
            if a == 1 {
                let p: f64 = v.iter().zip(&axes[0]).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(&axes[0]).for_each(|(x, y)| *x -= p * y);
            }
            normalise(&mut v);
            let mut next = step(&v);
            if a == 1 {
                let p: f64 = next.iter().zip(&axes[0]).map(|(x, y)| x * y).sum();
                next.iter_mut().zip(&axes[0]).for_each(|(x, y)| *x -= p * y);
            }
            along = normalise(&mut next);
            let change: f64 = next.iter().zip(&v).map(|(x, y)| (x - y).abs()).sum();
            v = next;
            if change < 1e-10 {
                break;
            }
        }
        shares[a] = if total > 0.0 { along / total } else { 0.0 };
        axes[a] = v;
    }
    (axes, shares, mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn ks_of_tiny_samples_by_hand() {
        // F_a steps at 1, 2, 3; F_b at 2.5, 3.5. At t = 2: F_a = 2/3, F_b = 0.
        assert_abs_diff_eq!(
            ks(&[1.0, 2.0, 3.0], &[2.5, 3.5]),
            2.0 / 3.0,
            epsilon = 1e-12
        );
        assert_eq!(ks(&[1.0, 2.0], &[2.0, 1.0]), 0.0);
        assert_eq!(ks(&[0.0, 0.0], &[5.0]), 1.0);
        // Ties across the samples: at t = 1, F_a = 1/2 and F_b = 1/3.
        assert_abs_diff_eq!(
            ks(&[1.0, 2.0], &[1.0, 2.0, 2.0]),
            1.0 / 6.0,
            epsilon = 1e-12
        );
    }

    #[test]
    fn total_variation_by_hand() {
        // p = (1/2, 1/2, 0), q = (1/4, 1/4, 1/2): 1/2 (1/4 + 1/4 + 1/2) = 1/2.
        assert_abs_diff_eq!(
            total_variation(&[0, 1], &[0, 1, 2, 2], 3),
            0.5,
            epsilon = 1e-12
        );
        assert_eq!(total_variation(&[2, 0], &[0, 2], 3), 0.0);
    }

    #[test]
    fn correlation_of_a_two_column_case() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [2.0f32, 4.0, 6.0, 8.0];
        let c = [4.0f32, 3.0, 2.0, 1.0];
        let r = correlation(&[&a, &b]);
        assert_abs_diff_eq!(r[1], 1.0, epsilon = 1e-12);
        let r = correlation(&[&a, &c]);
        assert_abs_diff_eq!(r[2], -1.0, epsilon = 1e-12);
        // x = (1, 2, 3, 4), y = (1, 3, 2, 4): sum dx dy = 4, sum dx^2 = sum dy^2 = 5, r = 0.8.
        let r = correlation(&[&a, &[1.0, 3.0, 2.0, 4.0]]);
        assert_abs_diff_eq!(r[1], 0.8, epsilon = 1e-12);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_abs_diff_eq!(quantile(&v, 0.5), 2.5, epsilon = 1e-12);
    }

    #[test]
    fn principal_axes_of_a_stretched_cloud() {
        // Points along (1, 1) with a little spread along (1, -1).
        let mut x = Vec::new();
        for i in -5..=5 {
            let t = i as f32;
            for e in [-0.1f32, 0.1] {
                x.extend([t + e, t - e]);
            }
        }
        let ([a, b], [s0, s1], mean) = principal_axes(&x, 2);
        assert!(mean[0].abs() < 1e-6 && mean[1].abs() < 1e-6);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert_abs_diff_eq!(a[0].abs(), h, epsilon = 1e-6);
        assert_abs_diff_eq!(a[0] * a[1], 0.5, epsilon = 1e-6);
        assert_abs_diff_eq!(b[0] * b[1], -0.5, epsilon = 1e-6);
        assert!(s0 > 0.99 && s1 < 0.01 && s0 + s1 <= 1.0 + 1e-9);
    }
}
