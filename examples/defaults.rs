//! The measurement behind `VaeConfig::default()`: vary one setting at a time around the defaults
//! and score the synthetic rows on two data sets.
//!
//! - blobs: 40 rows of a correlated 2-D Gaussian (a typical small minority class); score = error of
//!   the generated mean and covariance against the true ones (Frobenius norm, lower is better).
//! - digits: 18 rows of one digit (the rare class of the demo); score = share of synthetic rows that
//!   a nearest-centroid classifier fitted on all real digits assigns to that digit (fidelity,
//!   higher is better) and the ratio of synthetic to real total variance of that digit
//!   (diversity, 1 is ideal).
//!
//! `cargo run --release --example defaults`

use ndarray::{Array1, Array2, Axis};
use smrt::rng::{Purpose, Stream};
use smrt::{Likelihood, Scaling, Vae, VaeConfig};

fn blob(n: usize, seed: u64) -> Array2<f32> {
    let s = Stream::new(seed, Purpose::Generate, 77);
    let l = [[1.0f32, 0.0], [0.6, 0.8f32.sqrt() * 0.7]];
    Array2::from_shape_fn((n, 2), |(i, j)| {
        let (a, b) = (s.normal_at(2 * i as u64), s.normal_at(2 * i as u64 + 1));
        [3.0, -2.0][j] + l[j][0] * a + l[j][1] * b
    })
}

fn blob_score(cfg: &VaeConfig) -> f64 {
    let mut total = 0.0;
    let l = [[1.0f64, 0.0], [0.6, 0.8f64.sqrt() * 0.7]];
    let cov = [[1.0, 0.6], [0.6, 0.36 + l[1][1] * l[1][1]]];
    for seed in 0..3 {
        let x = blob(40, seed);
        let vae = Vae::fit(
            x.view(),
            &VaeConfig {
                seed,
                ..cfg.clone()
            },
        )
        .unwrap();
        let g = vae.generate(4000, seed).unwrap();
        let m = g.mean_axis(Axis(0)).unwrap();
        let c = g.t().dot(&g) / 4000.0
            - m.clone()
                .insert_axis(Axis(1))
                .dot(&m.clone().insert_axis(Axis(0)));
        let mut err = (f64::from(m[0]) - 3.0).powi(2) + (f64::from(m[1]) + 2.0).powi(2);
        for a in 0..2 {
            for b in 0..2 {
                err += (f64::from(c[[a, b]]) - cov[a][b]).powi(2);
            }
        }
        total += err.sqrt() / 3.0;
    }
    total
}

fn digit_score(cfg: &VaeConfig, x: &Array2<f32>, y: &[String]) -> (f64, f64) {
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let centroids: Vec<Array1<f32>> = labels
        .iter()
        .map(|l| {
            let rows: Vec<usize> = (0..y.len()).filter(|&i| &y[i] == l).collect();
            x.select(Axis(0), &rows).mean_axis(Axis(0)).unwrap()
        })
        .collect();
    let (mut fid, mut div) = (0.0, 0.0);
    let digits = ["0", "3", "8"];
    for d in digits {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == d).collect();
        let all = x.select(Axis(0), &rows);
        let rare: Vec<usize> = rows.iter().copied().step_by(10).collect();
        let train = x.select(Axis(0), &rare);
        let vae = Vae::fit(train.view(), cfg).unwrap();
        let g = vae.generate(500, 1).unwrap();
        let hits = g
            .rows()
            .into_iter()
            .filter(|r| {
                let best = (0..10)
                    .min_by(|&a, &b| {
                        let da = (&centroids[a] - r).mapv(|v| v * v).sum();
                        let db = (&centroids[b] - r).mapv(|v| v * v).sum();
                        da.total_cmp(&db)
                    })
                    .unwrap();
                labels[best] == d
            })
            .count();
        fid += hits as f64 / 500.0 / digits.len() as f64;
        let var = |m: &Array2<f32>| m.var_axis(Axis(0), 0.0).sum() as f64;
        div += var(&g) / var(&all) / digits.len() as f64;
    }
    (fid, div)
}

fn main() {
    let t = smrt::data::digits().unwrap();
    let base = VaeConfig::default();
    let variants: Vec<(String, VaeConfig)> = vec![
        ("default".into(), base.clone()),
        (
            "hidden [32]".into(),
            VaeConfig {
                hidden: vec![32],
                ..base.clone()
            },
        ),
        (
            "hidden [128]".into(),
            VaeConfig {
                hidden: vec![128],
                ..base.clone()
            },
        ),
        (
            "hidden [64, 32]".into(),
            VaeConfig {
                hidden: vec![64, 32],
                ..base.clone()
            },
        ),
        (
            "latent 2".into(),
            VaeConfig {
                latent: smrt::Latent::Count(2),
                ..base.clone()
            },
        ),
        (
            "latent 4".into(),
            VaeConfig {
                latent: smrt::Latent::Count(4),
                ..base.clone()
            },
        ),
        (
            "latent 16".into(),
            VaeConfig {
                latent: smrt::Latent::Count(16),
                ..base.clone()
            },
        ),
        (
            "beta 0.03".into(),
            VaeConfig {
                beta: 0.03,
                ..base.clone()
            },
        ),
        (
            "beta 0.3".into(),
            VaeConfig {
                beta: 0.3,
                ..base.clone()
            },
        ),
        (
            "beta 1".into(),
            VaeConfig {
                beta: 1.0,
                ..base.clone()
            },
        ),
        (
            "epochs 300".into(),
            VaeConfig {
                epochs: 300,
                ..base.clone()
            },
        ),
        (
            "epochs 3000".into(),
            VaeConfig {
                epochs: 3000,
                ..base.clone()
            },
        ),
        (
            "batch 16".into(),
            VaeConfig {
                batch_size: 16,
                ..base.clone()
            },
        ),
        (
            "batch 256".into(),
            VaeConfig {
                batch_size: 256,
                ..base.clone()
            },
        ),
        (
            "lr 1e-2".into(),
            VaeConfig {
                learning_rate: 1e-2,
                ..base.clone()
            },
        ),
        (
            "lr 1e-3".into(),
            VaeConfig {
                learning_rate: 1e-3,
                ..base.clone()
            },
        ),
        (
            "tanh".into(),
            VaeConfig {
                activation: smrt::Activation::Tanh,
                ..base.clone()
            },
        ),
        (
            "elu".into(),
            VaeConfig {
                activation: smrt::Activation::Elu,
                ..base.clone()
            },
        ),
        (
            "bernoulli, min-max".into(),
            VaeConfig {
                likelihood: Likelihood::Bernoulli,
                scaling: Scaling::MinMax,
                beta: 1.0,
                ..base.clone()
            },
        ),
        (
            "gaussian, min-max".into(),
            VaeConfig {
                scaling: Scaling::MinMax,
                ..base.clone()
            },
        ),
    ];
    println!(
        "{:<22} {:>10} {:>10} {:>10}",
        "setting", "blob err", "fidelity", "diversity"
    );
    for (name, cfg) in variants {
        let b = blob_score(&cfg);
        let (f, d) = digit_score(&cfg, &t.x, &t.y);
        println!("{name:<22} {b:>10.3} {f:>10.3} {d:>10.3}");
    }
}
