//! The public library API: balancing, determinism, learning, errors.

use std::collections::BTreeMap;

use ndarray::{array, s, Array2, ArrayView2, Axis};
use smrt::rng::{Purpose, Stream};
use smrt::shard::Shard;
use smrt::{
    Balancer, EarlyStopping, Error, Generation, Latent, Likelihood, Origin, Sampling, Smrt,
    Strategy, Vae, VaeConfig,
};

mod common;
use common::EVERY_GENERATION;

/// `n` draws from N(mean, L L^T), L lower-triangular 2x2.
fn gaussian(n: usize, mean: [f32; 2], l: [[f32; 2]; 2], seed: u64) -> Array2<f32> {
    let s = Stream::new(seed, Purpose::Generate, 99);
    Array2::from_shape_fn((n, 2), |(i, j)| {
        let (e0, e1) = (s.normal_at(2 * i as u64), s.normal_at(2 * i as u64 + 1));
        mean[j] + l[j][0] * e0 + l[j][1] * e1
    })
}

fn mean_cov(x: ArrayView2<f32>) -> ([f64; 2], [[f64; 2]; 2]) {
    let n = x.nrows() as f64;
    let m = [0, 1].map(|j| x.column(j).iter().map(|&v| f64::from(v)).sum::<f64>() / n);
    let mut c = [[0.0; 2]; 2];
    for row in x.rows() {
        for a in 0..2 {
            for b in 0..2 {
                c[a][b] += (f64::from(row[a]) - m[a]) * (f64::from(row[b]) - m[b]) / n;
            }
        }
    }
    (m, c)
}

/// Three classes of 2-D blobs with string labels: 120 "big", 30 "mid", 12 "small".
fn blobs() -> (Array2<f32>, Vec<String>) {
    let id = [[1.0, 0.0], [0.0, 1.0]];
    let parts = [
        (gaussian(120, [0.0, 0.0], id, 1), "big"),
        (gaussian(30, [5.0, 5.0], id, 2), "mid"),
        (gaussian(12, [-5.0, 5.0], id, 3), "small"),
    ];
    let mut x = Array2::zeros((0, 2));
    let mut y = Vec::new();
    for (p, label) in parts {
        x.append(Axis(0), p.view()).unwrap();
        y.extend(std::iter::repeat_n(label.to_string(), p.nrows()));
    }
    (x, y)
}

/// Exactly 15 epochs per class (no step budget).
fn quick() -> smrt::SmrtBuilder<String> {
    Smrt::builder().epochs(15).min_steps(0).seed(11)
}

#[test]
fn vae_learns_a_correlated_gaussian() {
    // Covariance L L^T = [[1, 0.6], [0.6, 0.8]].
    let l = [[1.0, 0.0], [0.6, (0.8f32 - 0.36).sqrt()]];
    let x = gaussian(500, [3.0, -2.0], l, 5);
    let vae = Vae::fit(x.view(), &VaeConfig::default()).unwrap();
    let h = &vae.history().epochs;
    // The first epoch's loss is near that of a model that ignores its latent (about 2.84 nats
    // per row for two standardised features); the true Gaussian's is about 2.54.
    assert!(
        h.last().unwrap().total < h[0].total - 0.15,
        "loss did not fall: {} -> {}",
        h[0].total,
        h.last().unwrap().total
    );
    let g = vae.generate(4000, 1).unwrap();
    let (m, c) = mean_cov(g.view());
    let (m0, c0) = mean_cov(x.view());
    // Stated tolerances: means within 0.15 (0.15 sd), covariance entries within 0.2.
    for j in 0..2 {
        assert!(
            (m[j] - m0[j]).abs() < 0.15,
            "mean {j}: {} vs {}",
            m[j],
            m0[j]
        );
        for k in 0..2 {
            assert!(
                (c[j][k] - c0[j][k]).abs() < 0.2,
                "cov {j}{k}: {} vs {}",
                c[j][k],
                c0[j][k]
            );
        }
    }
}

#[test]
fn same_seed_same_rows_other_seed_other_rows() {
    let (x, y) = blobs();
    let run = |seed: u64, generation| {
        Smrt::builder()
            .epochs(10)
            .seed(seed)
            .generation(generation)
            .clip(false) // clipped values of two seeds can meet at a bound
            .dropout(0.1)
            .build()
            .unwrap()
            .fit_resample(x.view(), &y)
            .unwrap()
    };
    for generation in EVERY_GENERATION {
        let a = run(4, generation);
        let b = run(4, generation);
        let c = run(5, generation);
        let bits = |m: &Array2<f32>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.x), bits(&b.x));
        assert_eq!(a.origin, b.origin);
        let n = x.nrows();
        assert_eq!(a.x.nrows(), c.x.nrows());
        assert!(a
            .x
            .slice(s![n.., ..])
            .iter()
            .zip(c.x.slice(s![n.., ..]))
            .all(|(p, q)| p != q));
    }
}

#[test]
fn exact_counts_for_every_strategy_with_string_labels() {
    let (x, y) = blobs();
    let n = x.nrows();
    let cases: Vec<(Strategy<String>, [usize; 3])> = vec![
        (Strategy::NotMajority, [120, 120, 120]),
        (Strategy::Minority, [120, 30, 120]),
        (Strategy::Ratio(0.5), [120, 60, 60]),
        (Strategy::Ratio(0.2), [120, 30, 24]),
        (
            Strategy::Targets([("small".to_string(), 50), ("mid".to_string(), 31)].into()),
            [120, 31, 50],
        ),
    ];
    for (strategy, want) in cases {
        let out = quick()
            .strategy(strategy.clone())
            .build()
            .unwrap()
            .fit_resample(x.view(), &y)
            .unwrap();
        let counts = out.class_counts();
        let got = ["big", "mid", "small"].map(|l| counts[&l.to_string()]);
        assert_eq!(got, want, "{strategy:?}");
        assert_eq!(out.x.slice(s![..n, ..]), x, "input rows changed");
        assert_eq!(&out.y[..n], &y[..]);
        assert!(out.origin[..n]
            .iter()
            .enumerate()
            .all(|(i, o)| *o == Origin::Real(i)));
        assert!(out.origin[n..].iter().all(|o| o.is_synthetic()));
        assert_eq!(out.synthetic_count(), out.x.nrows() - n);
        // A model per grown class, with its history.
        for (label, model) in &out.models {
            assert!(counts[label] > y.iter().filter(|l| *l == label).count());
            assert_eq!(model.history().epochs.len(), 15);
        }
    }
}

#[test]
fn binary_integer_labels() {
    let x = gaussian(50, [1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]], 9);
    let y: Vec<i64> = (0..50).map(|i| if i < 42 { -1 } else { 1 }).collect();
    let out = Smrt::builder()
        .epochs(5)
        .ratio(0.5)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    assert_eq!(out.class_counts(), BTreeMap::from([(&-1, 42), (&1, 21)]));
}

#[test]
fn synthetic_rows_land_near_their_class() {
    let (x, y) = blobs();
    let out = quick()
        .epochs(200)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    let n = x.nrows();
    let centre = |l: &str| match l {
        "big" => [0.0, 0.0],
        "mid" => [5.0, 5.0],
        _ => [-5.0, 5.0],
    };
    for (row, label) in out.x.slice(s![n.., ..]).rows().into_iter().zip(&out.y[n..]) {
        let c = centre(label);
        let d = ((row[0] - c[0]).powi(2) + (row[1] - c[1]).powi(2)).sqrt();
        assert!(d < 4.0, "{label} row {row} is {d} from its centre");
    }
}

#[test]
fn posterior_generation_reports_real_sources_of_the_same_class() {
    let (x, y) = blobs();
    let out = quick()
        .generation(Generation::Posterior)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    let n = x.nrows();
    for (o, label) in out.origin[n..].iter().zip(&out.y[n..]) {
        let Origin::Synthetic { source: Some(src) } = *o else {
            panic!("no source: {o:?}")
        };
        assert_eq!(&y[src], label);
    }
    let prior = quick()
        .generation(Generation::Prior)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    assert!(prior.origin[n..]
        .iter()
        .all(|o| *o == Origin::Synthetic { source: None }));
}

#[test]
fn shuffled_output_keeps_track_of_origins() {
    let (x, y) = blobs();
    let out = quick()
        .shuffle(true)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    assert_ne!(out.origin[0], Origin::Real(0));
    let mut seen = vec![false; x.nrows()];
    for (i, o) in out.origin.iter().enumerate() {
        if let Origin::Real(r) = *o {
            assert_eq!(out.x.row(i), x.row(r));
            assert_eq!(out.y[i], y[r]);
            seen[r] = true;
        }
    }
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn prefit_models_are_reused() {
    let (x, y) = blobs();
    let small: Vec<usize> = (0..y.len()).filter(|&i| y[i] == "small").collect();
    let cfg = VaeConfig {
        epochs: 3,
        min_steps: 0,
        seed: 77,
        ..VaeConfig::default()
    };
    let model = Vae::fit(x.select(Axis(0), &small).view(), &cfg).unwrap();
    let out = quick()
        .prefit("small".to_string(), model.clone())
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    assert_eq!(out.models["small"], model);
    assert_eq!(out.models["mid"].history().epochs.len(), 15);

    let wide = Vae::fit(array![[0.0f32, 1.0, 2.0], [1.0, 2.0, 4.0]].view(), &cfg).unwrap();
    let err = quick()
        .prefit("small".to_string(), wide)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y);
    assert!(matches!(err, Err(Error::DataModel(_))), "{err:?}");
}

#[test]
fn vae_round_trips_and_encodes() {
    let x = gaussian(200, [10.0, -4.0], [[2.0, 0.0], [1.0, 0.5]], 3);
    let cfg = VaeConfig {
        latent: Latent::Fraction(1.0),
        early_stopping: Some(EarlyStopping {
            min_delta: 1e-3,
            patience: 50,
        }),
        ..VaeConfig::default()
    };
    let vae = Vae::fit(x.view(), &cfg).unwrap();
    assert_eq!(vae.latent(), 2);
    let (mu, logvar) = vae.encode(x.view()).unwrap();
    assert_eq!(mu.dim(), (200, 2));
    assert!(logvar.iter().all(|v| v.is_finite()));
    let r = vae.reconstruct(x.view()).unwrap();
    // Reconstructions from the posterior mean are close to the input (units of the input).
    let err = (&r - &x).mapv(|v| v * v).mean().unwrap().sqrt();
    assert!(err < 0.8, "reconstruction rmse {err}");
    let (g, src) = vae.generate_from(x.view(), 10, 3).unwrap();
    assert_eq!(g.nrows(), 10);
    assert!(src.iter().all(|&s| s < 200));
    assert!(vae
        .decode(array![[0.0f32, 0.0]].view())
        .unwrap()
        .iter()
        .all(|v| v.is_finite()));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let smrt = quick().build().unwrap();
    let x = array![[0.0f32, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]];
    let y: Vec<String> = ["a", "a", "a", "b"].map(String::from).to_vec();

    let empty = Array2::<f32>::zeros((0, 2));
    assert!(matches!(
        smrt.fit_resample(empty.view(), &[]),
        Err(Error::EmptyInput(_))
    ));
    assert!(matches!(
        smrt.fit_resample(x.view(), &y[..3]),
        Err(Error::ShapeMismatch {
            expected: 4,
            got: 3,
            ..
        })
    ));
    for bad in [f32::NAN, f32::INFINITY] {
        let mut xb = x.clone();
        xb[[2, 1]] = bad;
        assert!(matches!(
            smrt.fit_resample(xb.view(), &y),
            Err(Error::NonFinite { row: 2, col: 1, .. })
        ));
    }
    // Class "b" has one row: it cannot be modelled.
    let err = smrt.fit_resample(x.view(), &y).unwrap_err();
    assert!(
        matches!(err, Error::ClassTooSmall { count: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"b\""), "{err}");

    for r in [0.0, 1.5, -1.0, f32::NAN] {
        assert!(matches!(
            quick().ratio(r).build(),
            Err(Error::InvalidConfig { name: "ratio", .. })
        ));
    }
    let unknown = quick()
        .strategy(Strategy::Targets([("zebra".to_string(), 10)].into()))
        .build()
        .unwrap();
    assert!(matches!(
        unknown.fit_resample(x.view(), &y),
        Err(Error::UnknownClass(_))
    ));
    assert!(quick().batch_size(0).build().is_err());
    assert!(quick().dropout(1.0).build().is_err());
    assert!(Vae::fit(
        x.view(),
        &VaeConfig {
            likelihood: smrt::Likelihood::Bernoulli,
            ..VaeConfig::default()
        }
    )
    .is_err());
    let bern = VaeConfig {
        likelihood: smrt::Likelihood::Bernoulli,
        scaling: smrt::Scaling::None,
        ..VaeConfig::default()
    };
    assert!(matches!(
        Vae::fit(x.view(), &bern),
        Err(Error::DataModel(_))
    ));
}

#[test]
fn threaded_generation_equals_one_engine_bit_for_bit() {
    let x = gaussian(100, [1.0, 2.0], [[1.0, 0.0], [0.5, 1.0]], 4);
    let vae = Vae::fit(
        x.view(),
        &VaeConfig {
            epochs: 5,
            ..VaeConfig::default()
        },
    )
    .unwrap();
    let n = 20_000; // several chunks, split over threads
    let a = vae.generate(n, 9).unwrap();
    let b = vae
        .generate_with(&mut smrt::engine::CpuEngine::new(), n, 9)
        .unwrap();
    assert!(a
        .iter()
        .zip(b.iter())
        .all(|(p, q)| p.to_bits() == q.to_bits()));
    assert_ne!(a.row(0), vae.generate(1, 10).unwrap().row(0));
}

/// A class with a constant column, a whole-number column and a continuous one.
fn mixed_columns(n: usize) -> Array2<f32> {
    let s = Stream::new(3, Purpose::Generate, 5);
    Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => 7.5,
        1 => (i % 6) as f32 + (s.uniform_at(i as u64) * 3.0).floor(),
        _ => 2.0 * s.normal_at(1000 + i as u64),
    })
}

#[test]
fn generated_rows_keep_constants_whole_numbers_and_the_class_range() {
    let x = mixed_columns(60);
    let vae = Vae::fit(x.view(), &VaeConfig::default()).unwrap();
    assert_eq!(vae.columns().modelled(), &[1, 2]);
    assert_eq!(vae.modelled_features(), 2);
    let hot = |generation, clip| Sampling {
        generation,
        temperature: 3.0, // far into the tails, so clipping has work to do
        clip,
        ..Sampling::default()
    };
    let lo: Vec<f32> = x
        .columns()
        .into_iter()
        .map(|c| c.fold(f32::INFINITY, |a, &b| a.min(b)))
        .collect();
    let hi: Vec<f32> = x
        .columns()
        .into_iter()
        .map(|c| c.fold(f32::NEG_INFINITY, |a, &b| a.max(b)))
        .collect();
    for generation in EVERY_GENERATION {
        let (g, _) = vae
            .sample_on(&smrt::Device::Cpu, x.view(), 400, 2, &hot(generation, true))
            .unwrap();
        for row in g.rows() {
            assert_eq!(row[0], 7.5, "{generation:?}: constant column");
            assert_eq!(row[1].fract(), 0.0, "{generation:?}: whole numbers");
            for j in 1..3 {
                assert!(
                    (lo[j]..=hi[j]).contains(&row[j]),
                    "{generation:?}: column {j} = {} outside [{}, {}]",
                    row[j],
                    lo[j],
                    hi[j]
                );
            }
        }
    }
    // Without clipping, the hot prior leaves the range somewhere; constants and whole numbers stay.
    let (g, _) = vae
        .sample_on(
            &smrt::Device::Cpu,
            x.view(),
            400,
            2,
            &hot(Generation::Prior, false),
        )
        .unwrap();
    assert!(g.column(2).iter().any(|&v| v < lo[2] || v > hi[2]));
    assert!(g.column(0).iter().all(|&v| v == 7.5));
    assert!(g.column(1).iter().all(|&v| v.fract() == 0.0));
}

/// A class whose column 1 is a yes/no variable (values -1 and 3, about a quarter threes) tied to
/// column 0: the threes are the rows where column 0 is large.
fn yes_no_class(n: usize) -> Array2<f32> {
    let s = Stream::new(4, Purpose::Generate, 6);
    Array2::from_shape_fn((n, 3), |(i, j)| {
        let a = s.normal_at(i as u64);
        match j {
            0 => a,
            1 if a > 0.52 => 3.0, // P(N(0, 1) > 0.52) = 0.30; 23% of these 200 rows
            1 => -1.0,
            _ => 0.5 * a + 0.3 * s.normal_at(5000 + i as u64),
        }
    })
}

#[test]
fn two_valued_columns_are_drawn_as_their_values_at_the_class_rate() {
    let x = yes_no_class(200);
    let vae = Vae::fit_on(&smrt::Device::Cpu, x.view(), &VaeConfig::default()).unwrap();
    let columns = vae.columns();
    assert_eq!(
        (columns.modelled(), columns.binary()),
        (&[0, 2][..], &[1][..])
    );
    assert_eq!(vae.modelled_features(), 2);
    let threes = |g: &Array2<f32>| g.column(1).iter().filter(|&&v| v == 3.0).count();
    let real = threes(&x) as f64 / 200.0;
    for generation in EVERY_GENERATION {
        let g = draws_of(&vae, x.view(), 0..2000, generation);
        assert!(
            g.column(1).iter().all(|&v| v == 3.0 || v == -1.0),
            "{generation:?}: only the column's two values"
        );
        let rate = threes(&g) as f64 / 2000.0;
        assert!(
            (rate - real).abs() < 0.1,
            "{generation:?}: {rate} threes, the class {real}"
        );
        // The threes come with the large values of column 0, as in the class.
        let mean_a = |value: f32| {
            let (sum, n) = g
                .rows()
                .into_iter()
                .filter(|r| r[1] == value)
                .fold((0.0, 0), |(s, n), r| (s + r[0], n + 1));
            sum / n as f32
        };
        assert!(
            mean_a(3.0) > mean_a(-1.0) + 0.8,
            "{generation:?}: column 0 {} with threes, {} without",
            mean_a(3.0),
            mean_a(-1.0)
        );
    }
    // The reconstruction gives each row its own value nearly always.
    let back = vae.reconstruct(x.view()).unwrap();
    let agree = (0..200).filter(|&i| back[[i, 1]] == x[[i, 1]]).count();
    assert!(agree >= 180, "{agree} of 200 rows keep their value");
    // Residual draws at temperature 0 are their source rows, the two-valued column included.
    assert_still_draws_are_their_sources(&vae, x.view(), 100);
}

/// Residual draws at temperature 0 are exactly the rows they start from.
fn assert_still_draws_are_their_sources(vae: &Vae, x: ArrayView2<'_, f32>, n: usize) {
    let still = Sampling {
        generation: Generation::Residual,
        temperature: 0.0,
        ..Sampling::default()
    };
    let (rows, sources) = vae.sample_on(&smrt::Device::Cpu, x, n, 5, &still).unwrap();
    for (row, source) in rows.rows().into_iter().zip(sources) {
        assert_eq!(row, x.row(source.unwrap()));
    }
}

/// Draws `range` of the run of `vae` for seed 3 in mode `generation`, from the class rows `x`.
fn draws_of(
    vae: &Vae,
    x: ArrayView2<'_, f32>,
    range: std::ops::Range<usize>,
    generation: Generation,
) -> Array2<f32> {
    vae.sample_range_on(&smrt::Device::Cpu, x, range, 3, &Sampling::of(generation))
        .unwrap()
        .0
}

/// A class whose column 1 is exactly 0.0 in the rows where column 0 is small (about 60%) and
/// spread over 0.4 to 1.4 in the others, like a concentration that most rows lack.
fn point_mass_class(n: usize) -> Array2<f32> {
    let s = Stream::new(9, Purpose::Generate, 2);
    Array2::from_shape_fn((n, 2), |(i, j)| {
        let a = s.normal_at(i as u64);
        match j {
            0 => a,
            _ if a < 0.25 => 0.0, // P(N(0, 1) < 0.25) = 0.60
            _ => 0.4 + a.min(1.0) * (0.7 + 0.3 * s.uniform_at(900 + i as u64)),
        }
    })
}

#[test]
fn a_value_the_class_holds_in_many_rows_is_drawn_at_the_class_share() {
    let x = point_mass_class(200);
    let at_point = |g: ArrayView2<'_, f32>| {
        g.column(1).iter().filter(|&&v| v == 0.0).count() as f64 / g.nrows() as f64
    };
    let real = at_point(x.view());
    assert!((0.5..0.7).contains(&real), "{real}");
    let vae = Vae::fit_on(&smrt::Device::Cpu, x.view(), &VaeConfig::default()).unwrap();
    let point = vae.columns().stats()[1]
        .point
        .expect("column 1 has a point mass");
    assert_eq!((point.value, point.share), (0.0, real as f32));
    assert!(vae.columns().stats()[0].point.is_none());
    for generation in EVERY_GENERATION {
        let g = draws_of(&vae, x.view(), 0..2000, generation);
        // A Gaussian decoder alone puts no draw exactly on 0.0.
        let share = at_point(g.view());
        assert!(
            (share - real).abs() < 0.08,
            "{generation:?}: {share} of the draws at the point, the class {real}"
        );
        // The same rows whichever pieces they are drawn in.
        let tail = draws_of(&vae, x.view(), 1500..2000, generation);
        assert_eq!(tail, g.slice(s![1500.., ..]), "{generation:?}");
    }
    // Residual draws at temperature 0 are still their source rows.
    assert_still_draws_are_their_sources(&vae, x.view(), 300);
}

/// A class whose column 2 is the sum of columns 0 and 1 and whose column 4 equals column 3 in
/// every row, like a total count beside its parts.
fn related_class(n: usize) -> Array2<f32> {
    let s = Stream::new(4, Purpose::Generate, 8);
    Array2::from_shape_fn((n, 5), |(i, j)| {
        let (a, b) = (s.normal_at(i as u64), 2.0 + s.normal_at(1000 + i as u64));
        let c = s.uniform_at(2000 + i as u64) * 3.0;
        [a, b, a + b, c, c][j]
    })
}

#[test]
fn relations_every_row_of_the_class_keeps_hold_in_every_draw() {
    let x = related_class(150);
    let vae = Vae::fit_on(&smrt::Device::Cpu, x.view(), &VaeConfig::default()).unwrap();
    let relations = vae.columns().relations().expect("two exact relations");
    assert_eq!((relations.len(), relations.columns()), (2, 5));
    let broken = |g: ArrayView2<'_, f32>| {
        g.rows()
            .into_iter()
            .map(|r| (r[2] - r[0] - r[1]).abs().max((r[4] - r[3]).abs()))
            .fold(0.0f32, f32::max)
    };
    for generation in EVERY_GENERATION {
        let g = draws_of(&vae, x.view(), 0..500, generation);
        assert!(
            broken(g.view()) < 1e-3,
            "{generation:?}: {}",
            broken(g.view())
        );
    }
    // Residual draws at temperature 0 are still their source rows.
    assert_still_draws_are_their_sources(&vae, x.view(), 300);
}

#[test]
fn smrt_takes_a_tables_yes_no_columns_from_the_whole_table() {
    // Column 1 holds 0 and 1 in every class; column 2 holds 0, 1 and 2 in the table, but the
    // rare class only 0 and 1: no yes/no variable, so the rare class models it as a Gaussian.
    let s = Stream::new(6, Purpose::Generate, 7);
    let n = 120;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => s.normal_at(i as u64),
        1 => f32::from(u8::from(i % 3 == 0)),
        _ if i < 100 => (i % 3) as f32,
        _ => (i % 2) as f32,
    });
    let y: Vec<String> = (0..n)
        .map(|i| if i < 100 { "common" } else { "rare" }.to_string())
        .collect();
    let models = quick()
        .build()
        .unwrap()
        .fit_models(x.view(), &y, None)
        .unwrap();
    let rare = models["rare"].columns();
    assert_eq!((rare.modelled(), rare.binary()), (&[0, 2][..], &[1][..]));
    // The rare class's rows alone, fitted directly, hold two values in both columns.
    let alone = Vae::fit_on(
        &smrt::Device::Cpu,
        x.slice(s![100.., ..]),
        &VaeConfig::default(),
    );
    assert_eq!(alone.unwrap().columns().binary(), &[1, 2]);
    // Rows that are a part of a table take the table's columns as given.
    let rare_rows = x.slice(s![100.., ..]);
    let part = quick().binary_columns(vec![2]).build().unwrap();
    let rare = ["rare".to_string()];
    let models = part.fit_models(rare_rows, &y[100..], Some(&rare)).unwrap();
    assert_eq!(models["rare"].columns().binary(), &[2]);
    // A column given as yes/no that a class holds three values of is an error.
    let err = part.fit_models(x.view(), &y, Some(&["common".to_string()]));
    assert!(matches!(err, Err(Error::DataModel(m)) if m.contains("yes/no")));
}

#[test]
fn residual_rows_at_temperature_zero_are_their_source_rows() {
    let (x, y) = blobs();
    let out = quick()
        .generation(Generation::Residual)
        .temperature(0.0)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    let n = x.nrows();
    for (row, o) in out.x.rows().into_iter().skip(n).zip(&out.origin[n..]) {
        let Origin::Synthetic { source: Some(src) } = *o else {
            panic!("residual rows have a source: {o:?}")
        };
        assert_eq!(row, x.row(src));
    }
    // At temperature 1 they move.
    let moved = quick()
        .generation(Generation::Residual)
        .build()
        .unwrap()
        .fit_resample(x.view(), &y)
        .unwrap();
    let Origin::Synthetic { source: Some(src) } = moved.origin[n] else {
        panic!("residual rows have a source")
    };
    assert_ne!(moved.x.row(n), x.row(src));
}

#[test]
fn prior_residual_rows_are_a_prior_draw_plus_their_source_rows_residual() {
    let (x, _) = blobs();
    let config = VaeConfig {
        epochs: 30,
        min_steps: 0,
        ..VaeConfig::default()
    };
    let vae = smrt::Vae::fit_on(&smrt::Device::Cpu, x.view(), &config).unwrap();
    // At temperature 0 the prior draw is z = 0: every row is x_i + dec(0) - dec(mu_i).
    let still = Sampling {
        generation: Generation::PriorResidual,
        temperature: 0.0,
        ..Sampling::default()
    };
    let (rows, sources) = vae
        .sample_on(&smrt::Device::Cpu, x.view(), 60, 3, &still)
        .unwrap();
    let centre = vae
        .decode(Array2::<f32>::zeros((1, vae.latent())).view())
        .unwrap();
    let reconstructed = vae.reconstruct(x.view()).unwrap();
    for (row, source) in rows.rows().into_iter().zip(sources) {
        let i = source.expect("prior-residual rows have a source");
        for j in 0..x.ncols() {
            let want = x[[i, j]] + centre[[0, j]] - reconstructed[[i, j]];
            assert!(
                (row[j] - want).abs() < 1e-4 * (1.0 + want.abs()),
                "row from {i}, column {j}: {} against {want}",
                row[j]
            );
        }
    }
}

/// Two classes with a numeric column and two categorical ones; class "rare" sees only some of
/// the categories.
fn mixed_classes() -> (Array2<f32>, Array2<u32>, Vec<String>) {
    let s = Stream::new(8, Purpose::Init, 0);
    let n = 90;
    let y: Vec<String> = (0..n)
        .map(|i| if i < 72 { "common" } else { "rare" }.to_string())
        .collect();
    let x = Array2::from_shape_fn((n, 2), |(i, j)| {
        s.normal_at((i * 2 + j) as u64) + if i < 72 { 0.0 } else { 3.0 }
    });
    let codes = Array2::from_shape_fn((n, 2), |(i, j)| match (i < 72, j) {
        (true, 0) => (i % 5) as u32,
        (false, 0) => [1, 3][i % 2],
        (true, _) => (i % 2) as u32,
        (false, _) => 1,
    });
    (x, codes, y)
}

#[test]
fn smrt_draws_only_the_categories_of_the_class_and_residual_keeps_the_source_rows() {
    let (x, codes, y) = mixed_classes();
    let levels = [5, 2];
    let categories = smrt::Categories {
        codes: codes.view(),
        levels: &levels,
    };
    for generation in [
        Generation::Prior,
        Generation::Posterior,
        Generation::Interpolate,
    ] {
        for category in [smrt::CategoryDraw::Sample, smrt::CategoryDraw::Argmax] {
            let out = quick()
                .generation(generation)
                .category(category)
                .build()
                .unwrap()
                .fit_resample_mixed(x.view(), categories, &y)
                .unwrap();
            assert_eq!(out.codes.dim(), (144, 2));
            assert_eq!(out.codes.slice(s![..90, ..]), codes);
            for r in 90..144 {
                assert!(
                    [1, 3].contains(&out.codes[[r, 0]]),
                    "{generation:?} row {r}"
                );
                assert_eq!(out.codes[[r, 1]], 1, "{generation:?} row {r}");
            }
        }
    }
    // Residual draws at temperature 0 are their source rows, categories included.
    let out = quick()
        .generation(Generation::Residual)
        .temperature(0.0)
        .build()
        .unwrap()
        .fit_resample_mixed(x.view(), categories, &y)
        .unwrap();
    for r in 90..144 {
        let Origin::Synthetic { source: Some(i) } = out.origin[r] else {
            panic!("residual rows have a source")
        };
        assert_eq!(out.codes.row(r), codes.row(i));
        assert_eq!(out.x.row(r), x.row(i));
    }
    // Far from the source's latent mean the head's choice can move, and then the category does.
    let far = quick()
        .generation(Generation::Residual)
        .temperature(4.0)
        .build()
        .unwrap()
        .fit_resample_mixed(x.view(), categories, &y)
        .unwrap();
    let moved = (90..144)
        .filter(|&r| {
            let Origin::Synthetic { source: Some(i) } = far.origin[r] else {
                panic!("residual rows have a source")
            };
            far.codes.row(r) != codes.row(i)
        })
        .count();
    assert!(moved > 0, "no category moved at temperature 4");
    assert!((90..144).all(|r| [1, 3].contains(&far.codes[[r, 0]])));
}

#[test]
fn smrt_balances_rows_whose_every_column_is_categorical() {
    let (_, codes, y) = mixed_classes();
    let none = Array2::<f32>::zeros((codes.nrows(), 0));
    let levels = [5, 2];
    let categories = smrt::Categories {
        codes: codes.view(),
        levels: &levels,
    };
    // Every likelihood, the learned variance included (it has no numeric column to learn).
    for likelihood in [Likelihood::Gaussian, Likelihood::GaussianLearned] {
        for generation in [Generation::Prior, Generation::Auto] {
            let out = quick()
                .likelihood(likelihood)
                .generation(generation)
                .build()
                .unwrap()
                .fit_resample_mixed(none.view(), categories, &y)
                .unwrap();
            assert_eq!(out.x.dim(), (144, 0));
            for r in 90..144 {
                assert!([1, 3].contains(&out.codes[[r, 0]]));
                assert_eq!(out.codes[[r, 1]], 1);
            }
        }
    }
}

#[test]
fn a_stop_flag_ends_training_between_epochs() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let (x, y) = blobs();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let (s, n) = (Arc::clone(&stop), Arc::clone(&seen));
    let smrt = Smrt::builder()
        .strategy(Strategy::Minority)
        .epochs(1000)
        .min_steps(0)
        .on_epoch(move |_, epoch, _| {
            n.fetch_add(1, Ordering::SeqCst);
            if epoch == 3 {
                s.store(true, Ordering::SeqCst);
            }
        })
        .stop_flag(stop)
        .build()
        .unwrap();
    let err = smrt.fit_resample(x.view(), &y).unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        4,
        "epochs 0 to 3 ran, then it stopped"
    );
}

#[test]
fn auto_generation_chooses_per_class_and_the_choice_is_kept() {
    // "noise": 300 rows of 40 independent features, which 8 latent dimensions cannot carry, so
    // prior draws sit near the mean and the real rows' residuals are what spreads them;
    // "few": 8 rows, too few to hold any out, so the prior.
    let s = Stream::new(21, Purpose::Init, 0);
    let (n, d) = (300 + 8 + 400, 40);
    let x = Array2::from_shape_fn((n, d), |(i, j)| {
        s.normal_at((i * d + j) as u64) + if i < 300 { 0.0 } else { 4.0 }
    });
    let y: Vec<String> = (0..n)
        .map(|i| match i {
            0..300 => "noise",
            300..308 => "few",
            _ => "big",
        })
        .map(String::from)
        .collect();
    let smrt = Smrt::builder()
        .generation(Generation::Auto)
        .epochs(20)
        .min_steps(0)
        .build()
        .unwrap();
    let models = smrt.fit_models(x.view(), &y, None).unwrap();
    assert_eq!(
        models["noise"].preferred_generation(),
        Some(Generation::PriorResidual)
    );
    assert_eq!(
        models["few"].preferred_generation(),
        Some(Generation::Prior)
    );
    // The same seed chooses the same; a saved model keeps its choice.
    let again = smrt.fit_models(x.view(), &y, None).unwrap();
    assert_eq!(again["noise"].decoder(), models["noise"].decoder());
    assert_eq!(
        again["noise"].preferred_generation(),
        models["noise"].preferred_generation()
    );
    let dir = tempfile::tempdir().unwrap();
    let info = smrt::vae::ModelInfo {
        class: "noise".into(),
        features: (0..d).map(|j| j.to_string()).collect(),
    };
    models["noise"]
        .save(&dir.path().join("noise"), &info)
        .unwrap();
    let (back, _) = Vae::load(&dir.path().join("noise")).unwrap();
    assert_eq!(back.preferred_generation(), Some(Generation::PriorResidual));
    // Drawing with auto is drawing with the chosen mode.
    let sampling = |generation| Sampling {
        generation,
        ..Sampling::default()
    };
    let rows = x.slice(s![..300, ..]);
    let auto = back
        .sample_on(&smrt::Device::Cpu, rows, 50, 3, &sampling(Generation::Auto))
        .unwrap();
    let chosen = back
        .sample_on(
            &smrt::Device::Cpu,
            rows,
            50,
            3,
            &sampling(Generation::PriorResidual),
        )
        .unwrap();
    assert_eq!(auto, chosen);
}

#[test]
fn smrt_synthetic_rows_alone_are_the_rows_appended_to_the_input() {
    let (x, codes, y) = mixed_classes();
    let levels = [5, 2];
    let with = smrt::Categories {
        codes: codes.view(),
        levels: &levels,
    };
    let without = smrt::Categories::none(x.nrows());
    let smrt = quick().build().unwrap();
    for c in [with, without] {
        let all = smrt.fit_resample_mixed(x.view(), c, &y).unwrap();
        let synthetic = smrt.fit_synthetic(x.view(), c, &y, Shard::ALL).unwrap();
        assert_eq!(synthetic.x.nrows(), 144 - 90);
        assert_eq!(synthetic.x, all.x.slice(s![90.., ..]));
        assert_eq!(synthetic.codes, all.codes.slice(s![90.., ..]));
        assert_eq!(synthetic.y, all.y[90..]);
        assert_eq!(synthetic.origin, all.origin[90..]);
        assert_eq!(synthetic.models.len(), 1);
        // Three shards, each fitted and drawn alone, are the rows of one run.
        let parts: Vec<_> = (1..=3)
            .map(|k| {
                smrt.fit_synthetic(x.view(), c, &y, Shard::new(k, 3).unwrap())
                    .unwrap()
            })
            .collect();
        let views: Vec<_> = parts.iter().map(|p| p.x.view()).collect();
        assert_eq!(ndarray::concatenate(Axis(0), &views).unwrap(), synthetic.x);
        let views: Vec<_> = parts.iter().map(|p| p.codes.view()).collect();
        assert_eq!(
            ndarray::concatenate(Axis(0), &views).unwrap(),
            synthetic.codes
        );
        let origin: Vec<Origin> = parts.iter().flat_map(|p| p.origin.clone()).collect();
        assert_eq!(origin, synthetic.origin);
    }
    // Shuffled rows have no shards that add up.
    let shuffled = quick().shuffle(true).build().unwrap();
    let none = smrt::Categories::none(x.nrows());
    let err = shuffled.fit_synthetic(x.view(), none, &y, Shard::new(1, 2).unwrap());
    assert!(err.unwrap_err().to_string().contains("shuffle"));
}

#[test]
fn a_shard_of_smrt_rows_fits_only_the_classes_it_draws() {
    // 120 big, 30 mid, 12 small: 90 mid rows, then 108 small rows; thirds of 66 rows.
    let (x, y) = blobs();
    let smrt = quick().build().unwrap();
    let none = smrt::Categories::none(x.nrows());
    let shard = |k| {
        smrt.fit_synthetic(x.view(), none, &y, Shard::new(k, 3).unwrap())
            .unwrap()
    };
    let (first, third) = (shard(1), shard(3));
    assert_eq!((first.y.len(), third.y.len()), (66, 66));
    assert!(first.y.iter().all(|l| l == "mid"));
    assert!(third.y.iter().all(|l| l == "small"));
    assert_eq!(first.models.keys().collect::<Vec<_>>(), vec!["mid"]);
    assert_eq!(third.models.keys().collect::<Vec<_>>(), vec!["small"]);
    assert_eq!(shard(2).models.len(), 2);
}

#[test]
fn smrt_fits_a_class_larger_than_fit_rows_from_a_sample() {
    let (x, y) = blobs(); // 120 big, 30 mid, 12 small
    let run = |b: smrt::SmrtBuilder<String>| b.build().unwrap().fit_resample(x.view(), &y).unwrap();
    let all = run(quick());
    // No class that grows has more than 30 rows: the same result.
    assert_eq!(run(quick().fit_rows(30)).x, all.x);
    // Ten rows: both classes fitted from samples; the same counts, other rows, reproducibly.
    let ten = run(quick().fit_rows(10));
    assert_eq!(ten.class_counts(), all.class_counts());
    assert_ne!(ten.x, all.x);
    assert_eq!(run(quick().fit_rows(10)).x, ten.x);
    // The mid model saw ten of its rows: its scaler's mean is theirs, not the class's.
    let mid: Vec<usize> = (0..y.len()).filter(|&i| y[i] == "mid").collect();
    let class_mean = x.select(Axis(0), &mid).mean_axis(Axis(0)).unwrap();
    let probe = ndarray::Array2::from_shape_vec((1, 2), class_mean.to_vec()).unwrap();
    let scaled = |m: &Vae| m.scaler().transform(probe.view());
    let full_model = &all.models["mid"];
    let sampled_model = &ten.models["mid"];
    assert!(scaled(full_model).iter().all(|v| v.abs() < 1e-4));
    assert!(scaled(sampled_model).iter().any(|v| v.abs() > 1e-3));
    let err = quick().fit_rows(1).build().unwrap_err().to_string();
    assert!(err.contains("at least 2 rows"), "{err}");
}

#[test]
fn a_class_fitted_from_a_sample_knows_every_category_of_its_rows() {
    // 60 "rare" rows, of which one alone has category 9; fitted from 5 of them, the sample
    // mostly misses it, and the draws (residual: from any of the class's rows) still encode it.
    let n = 160;
    let x = Array2::from_shape_fn((n, 2), |(i, j)| ((i * 7 + j * 3) % 13) as f32);
    let y: Vec<String> = (0..n)
        .map(|i| if i < 100 { "common" } else { "rare" }.to_string())
        .collect();
    let codes = Array2::from_shape_fn((n, 1), |(i, _)| if i == 130 { 9 } else { (i % 2) as u32 });
    let levels = [10];
    let categories = smrt::Categories {
        codes: codes.view(),
        levels: &levels,
    };
    for seed in 0..4 {
        for generation in [Generation::Residual, Generation::Auto] {
            let out = quick()
                .seed(seed)
                .fit_rows(5)
                .generation(generation)
                .build()
                .unwrap()
                .fit_resample_mixed(x.view(), categories, &y)
                .unwrap();
            assert_eq!(out.class_counts()[&"rare".to_string()], 100, "seed {seed}");
            assert_eq!(out.models["rare"].heads().seen()[0], vec![0, 1, 9]);
        }
    }
}
