//! SMOTE, random over- and under-sampling, and the nearest-neighbour search under them.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2};
use smrt::engine::Gpu;
use smrt::knn::nearest_neighbors;
use smrt::rng::{Purpose, Stream};
use smrt::shard::Shard;
use smrt::{
    Balancer, Categories, Device, Error, Origin, RandomOverSampler, RandomUnderSampler, Smote,
    Strategy,
};

fn random(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let s = Stream::new(seed, Purpose::Init, 0);
    Array2::from_shape_fn((n, d), |(i, j)| 10.0 * s.normal_at((i * d + j) as u64))
}

/// The `k` nearest other rows by direct f64 distances, ties to the lower index.
fn naive(x: ArrayView2<'_, f32>, k: usize) -> Vec<Vec<u32>> {
    let n = x.nrows();
    (0..n)
        .map(|q| {
            let mut d: Vec<(f64, u32)> = (0..n)
                .filter(|&j| j != q)
                .map(|j| {
                    let s = x
                        .row(q)
                        .iter()
                        .zip(x.row(j))
                        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                        .sum();
                    (s, j as u32)
                })
                .collect();
            d.select_nth_unstable_by(k - 1, |a, b| a.partial_cmp(b).unwrap());
            d.truncate(k);
            d.sort_by(|a, b| a.partial_cmp(b).unwrap());
            d.iter().map(|p| p.1).collect()
        })
        .collect()
}

/// The CPU, and the GPU when wgpu finds an adapter (else a notice; never with
/// `SMRT_TEST_REQUIRE_GPU` set).
fn devices() -> Vec<Device> {
    let mut out = vec![Device::Cpu];
    match Gpu::new() {
        Ok(g) => out.push(Device::Gpu(g)),
        Err(e) => {
            assert!(
                std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
                "SMRT_TEST_REQUIRE_GPU is set but: {e}"
            );
            eprintln!("GPU neighbour tests skipped: {e}");
        }
    }
    out
}

#[test]
fn neighbours_equal_a_naive_reference_on_both_engines() {
    let devices = devices();
    for (n, d, k) in [
        (2, 1, 1),
        (7, 3, 5),
        (65, 33, 5),
        (300, 7, 64),
        (1000, 3, 10),
        // Several reference tiles on both engines.
        (9000, 2, 3),
    ] {
        let x = random(n, d, n as u64);
        let want = naive(x.view(), k);
        for device in &devices {
            let got = nearest_neighbors(device, x.view(), k).unwrap();
            // Distances come from |a|^2 + |b|^2 - 2ab in f32: rows whose distances differ by
            // less than that rounding may trade places; anything else is an error.
            let dist = |a: usize, b: usize| -> f64 {
                x.row(a)
                    .iter()
                    .zip(x.row(b))
                    .map(|(&u, &v)| (f64::from(u) - f64::from(v)).powi(2))
                    .sum()
            };
            let norm_max = x
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>())
                .fold(0.0, f64::max);
            let mut exact = 0;
            for (q, w) in want.iter().enumerate() {
                let g = got.row(q).to_vec();
                if g == *w {
                    exact += 1;
                    continue;
                }
                let what = format!(
                    "{} n {n} d {d} k {k}: row {q}: {g:?} vs {w:?}",
                    device.name()
                );
                for (&a, &b) in g.iter().zip(w) {
                    let (da, db) = (dist(q, a as usize), dist(q, b as usize));
                    assert!(
                        a as usize != q && (da - db).abs() <= 1e-5 * 4.0 * norm_max,
                        "{what}"
                    );
                }
            }
            assert!(
                exact * 100 >= 99 * n,
                "{}: only {exact} of {n} rows exact",
                device.name()
            );
        }
    }
}

#[test]
fn neighbours_among_other_rows_equal_a_naive_reference_on_both_engines() {
    let devices = devices();
    for (nq, nr, d, k) in [
        (1, 1, 1, 1),
        (50, 7, 3, 7),
        (600, 3000, 5, 2),
        (300, 5000, 33, 1),
    ] {
        let (queries, refs) = (random(nq, d, 7 + nq as u64), random(nr, d, 11 + nr as u64));
        let dist = |q: usize, r: usize| -> f64 {
            queries
                .row(q)
                .iter()
                .zip(refs.row(r))
                .map(|(&u, &v)| (f64::from(u) - f64::from(v)).powi(2))
                .sum()
        };
        for device in &devices {
            let got = smrt::knn::nearest_in(device, queries.view(), refs.view(), k).unwrap();
            assert_eq!(got.dim(), (nq, k));
            for q in 0..nq {
                let mut want: Vec<(f64, u32)> = (0..nr).map(|r| (dist(q, r), r as u32)).collect();
                want.sort_by(|a, b| a.partial_cmp(b).unwrap());
                for (rank, &g) in got.row(q).iter().enumerate() {
                    // The same distance as the exact neighbour of that rank, up to f32 rounding.
                    let (dg, dw) = (dist(q, g as usize), want[rank].0);
                    assert!(
                        (dg - dw).abs() <= 1e-4 * (1.0 + dw),
                        "{} query {q} rank {rank}: {g} at {dg} vs {:?}",
                        device.name(),
                        want[rank]
                    );
                }
            }
        }
    }
    // A query equal to a reference row finds it, at distance 0; k over the references is an error.
    let refs = ndarray::array![[0.0f32, 1.0], [5.0, 5.0]];
    for device in &devices {
        let nn = smrt::knn::nearest_in(device, refs.view(), refs.view(), 2).unwrap();
        assert_eq!(nn.row(1).to_vec(), vec![1, 0], "{}", device.name());
        assert!(smrt::knn::nearest_in(device, refs.view(), refs.view(), 3).is_err());
    }
}

#[test]
fn equal_distances_are_ordered_by_index() {
    // Rows 0..4 are the same point, row 4 another, far away.
    let x = ndarray::array![
        [1.0f32, 2.0],
        [1.0, 2.0],
        [1.0, 2.0],
        [1.0, 2.0],
        [9.0, 9.0]
    ];
    for device in devices() {
        let nn = nearest_neighbors(&device, x.view(), 3).unwrap();
        assert_eq!(nn.row(0).to_vec(), vec![1, 2, 3], "{}", device.name());
        assert_eq!(nn.row(2).to_vec(), vec![0, 1, 3], "{}", device.name());
        assert_eq!(nn.row(4).to_vec(), vec![0, 1, 2], "{}", device.name());
    }
}

/// Two classes: 60 rows of "big" and 9 of "small", plus 4 of "tiny".
fn data() -> (Array2<f32>, Vec<&'static str>) {
    let x = random(73, 4, 5);
    let y = (0..73)
        .map(|i| match i {
            0..60 => "big",
            60..69 => "small",
            _ => "tiny",
        })
        .collect();
    (x, y)
}

#[test]
fn every_smote_row_lies_on_a_segment_to_a_neighbour() {
    let (x, y) = data();
    for device in devices() {
        let k = 5;
        let smote = Smote::new().k_neighbors(k).seed(3).device(device.clone());
        let out = smote.fit_resample(x.view(), &y).unwrap();
        for (label, first) in [("small", 60), ("tiny", 69)] {
            let class: Vec<usize> = (0..73).filter(|&i| y[i] == label).collect();
            let class_x = x.select(ndarray::Axis(0), &class);
            let nn = naive(class_x.view(), k.min(class.len() - 1));
            let mut seen = 0;
            for (r, o) in out.origin.iter().enumerate() {
                let Origin::Synthetic { source: Some(src) } = *o else {
                    continue;
                };
                if out.y[r] != label {
                    continue;
                }
                seen += 1;
                let base = src - first;
                let row = out.x.row(r);
                let on_segment = nn[base].iter().any(|&j| {
                    let (b, e) = (x.row(src), class_x.row(j as usize));
                    let dir: Vec<f32> = e.iter().zip(b).map(|(e, b)| e - b).collect();
                    let off: Vec<f32> = row.iter().zip(b).map(|(r, b)| r - b).collect();
                    let len2: f32 = dir.iter().map(|v| v * v).sum();
                    let t = off.iter().zip(&dir).map(|(o, d)| o * d).sum::<f32>() / len2;
                    let miss: f32 = off.iter().zip(&dir).map(|(o, d)| (o - t * d).powi(2)).sum();
                    (0.0..1.0).contains(&t) && miss.sqrt() < 1e-3
                });
                assert!(on_segment, "{label} row {r} (base {src}) is on no segment");
            }
            assert_eq!(seen, 60 - class.len(), "{label}: one row per missing row");
        }
    }
}

#[test]
fn class_counts_for_every_strategy_and_sampler() {
    let (x, y) = data(); // big 60, small 9, tiny 4
    let counts = |out: &smrt::Resampled<&str>| -> Vec<usize> {
        ["big", "small", "tiny"]
            .iter()
            .map(|l| out.class_counts().get(l).copied().unwrap_or(0))
            .collect()
    };
    let over: [(Strategy<&str>, [usize; 3]); 4] = [
        (Strategy::NotMajority, [60, 60, 60]),
        (Strategy::Minority, [60, 9, 60]),
        (Strategy::Ratio(0.5), [60, 30, 30]),
        (
            Strategy::Targets(BTreeMap::from([("small", 20)])),
            [60, 20, 4],
        ),
    ];
    for (strategy, want) in over {
        let smote = Smote::new()
            .strategy(strategy.clone())
            .backend(smrt::Backend::Cpu);
        assert_eq!(
            counts(&smote.fit_resample(x.view(), &y).unwrap()),
            want,
            "smote {strategy:?}"
        );
        let ros = RandomOverSampler::new().strategy(strategy.clone());
        assert_eq!(
            counts(&ros.fit_resample(x.view(), &y).unwrap()),
            want,
            "over {strategy:?}"
        );
    }
    let under: [(Strategy<&str>, [usize; 3]); 4] = [
        (Strategy::NotMajority, [4, 4, 4]),
        (Strategy::Minority, [4, 9, 4]),
        (Strategy::Ratio(0.25), [16, 9, 4]),
        (Strategy::Targets(BTreeMap::from([("big", 30)])), [30, 9, 4]),
    ];
    for (strategy, want) in under {
        let rus = RandomUnderSampler::new().strategy(strategy.clone());
        let out = rus.fit_resample(x.view(), &y).unwrap();
        assert_eq!(counts(&out), want, "under {strategy:?}");
        // Kept rows are real rows, unchanged, in input order.
        let mut last = None;
        for (r, o) in out.origin.iter().enumerate() {
            let Origin::Real(i) = *o else {
                panic!("under-sampling made a synthetic row")
            };
            assert!(last < Some(i));
            last = Some(i);
            assert_eq!(out.x.row(r), x.row(i));
            assert_eq!(out.y[r], y[i]);
        }
    }
}

#[test]
fn random_over_sampling_copies_rows_and_shrinkage_adds_scaled_noise() {
    let x = random(2000, 3, 8);
    let y: Vec<u8> = (0..2000).map(|i| u8::from(i < 400)).collect();
    let copies = RandomOverSampler::new()
        .seed(2)
        .fit_resample(x.view(), &y)
        .unwrap();
    for (r, o) in copies.origin.iter().enumerate().skip(2000) {
        let Origin::Synthetic { source: Some(s) } = *o else {
            panic!("a copy names its source")
        };
        assert_eq!(copies.x.row(r), x.row(s));
        assert_eq!(y[s], 1);
    }
    // Shrinkage 1: noise sd per feature = std_j * (4 / (5 * 400))^(1/7) (data sd 10).
    let smooth = RandomOverSampler::new()
        .shrinkage(1.0)
        .seed(2)
        .fit_resample(x.view(), &y)
        .unwrap();
    let want_sd = 10.0 * (4.0f64 / (5.0 * 400.0)).powf(1.0 / 7.0);
    let mut sq = 0.0f64;
    let mut n = 0;
    for (r, o) in smooth.origin.iter().enumerate().skip(2000) {
        let Origin::Synthetic { source: Some(s) } = *o else {
            unreachable!()
        };
        for (a, b) in smooth.x.row(r).iter().zip(x.row(s)) {
            sq += f64::from(a - b).powi(2);
            n += 1;
        }
    }
    let sd = (sq / n as f64).sqrt();
    assert!(
        (sd / want_sd - 1.0).abs() < 0.1,
        "noise sd {sd}, expected about {want_sd}"
    );
}

#[test]
fn shrinkage_per_class_gives_each_class_its_own_noise() {
    // Three classes: 0 (1,000 rows) stays; 1 and 2 (200 each) grow.
    let x = random(1400, 3, 11);
    let y: Vec<u8> = (0..1400)
        .map(|i| u8::from(i >= 1000) + u8::from(i >= 1200))
        .collect();
    let one = |s: f32| RandomOverSampler::new().shrinkage(s).seed(5);
    let per_class = RandomOverSampler::new()
        .shrinkage_per_class(BTreeMap::from([(0, 9.0), (1, 0.0), (2, 0.7)]))
        .seed(5)
        .fit_resample(x.view(), &y)
        .unwrap();
    let exact = one(0.0).fit_resample(x.view(), &y).unwrap();
    let smooth = one(0.7).fit_resample(x.view(), &y).unwrap();
    assert_eq!(per_class.y, exact.y);
    assert_eq!(
        per_class.origin, exact.origin,
        "the same copies, whatever the noise"
    );
    for r in 1400..per_class.y.len() {
        // Class 1 at 0 copies exactly; class 2 at 0.7 as the one-factor run at 0.7. Class 0's
        // factor is unused: it does not grow.
        let want = if per_class.y[r] == 1 { &exact } else { &smooth };
        assert_eq!(per_class.x.row(r), want.x.row(r), "row {r}");
    }
    assert_ne!(smooth.x, exact.x);
    // A class that grows needs a factor; a label not in y is refused.
    let missing = RandomOverSampler::new()
        .shrinkage_per_class(BTreeMap::from([(1, 0.5)]))
        .fit_resample(x.view(), &y);
    assert!(
        matches!(&missing, Err(Error::InvalidConfig { name: "shrinkage", reason }) if reason.contains("class 2")),
        "{missing:?}"
    );
    let unknown = RandomOverSampler::new()
        .shrinkage_per_class(BTreeMap::from([(1, 0.5), (2, 0.5), (7, 0.5)]))
        .fit_resample(x.view(), &y);
    assert!(
        matches!(unknown, Err(Error::UnknownClass(_))),
        "{unknown:?}"
    );
    let negative = RandomOverSampler::new()
        .shrinkage_per_class(BTreeMap::from([(1, 0.5), (2, -0.5)]))
        .fit_resample(x.view(), &y);
    assert!(matches!(
        negative,
        Err(Error::InvalidConfig {
            name: "shrinkage",
            ..
        })
    ));
}

#[test]
fn under_sampling_with_replacement_may_keep_a_row_twice() {
    // 400 rows of class 0 kept down to 300; class 1's 300 rows stay.
    let x = random(700, 2, 3);
    let y: Vec<u8> = (0..700).map(|i| u8::from(i >= 400)).collect();
    let run = |replacement| {
        RandomUnderSampler::new()
            .replacement(replacement)
            .seed(9)
            .fit_resample(x.view(), &y)
            .unwrap()
    };
    for replacement in [false, true] {
        let out = run(replacement);
        assert_eq!(out.class_counts()[&0], 300);
        let rows: Vec<usize> = (out.origin.iter())
            .map(|o| match *o {
                Origin::Real(i) => i,
                Origin::Synthetic { .. } => panic!("under-sampling keeps real rows"),
            })
            .collect();
        assert!(rows.windows(2).all(|w| w[0] <= w[1]), "input order");
        assert!(rows
            .iter()
            .filter(|&&i| i >= 400)
            .eq((400..700).collect::<Vec<_>>().iter()));
        for (r, &i) in rows.iter().enumerate() {
            assert_eq!(out.x.row(r), x.row(i));
            assert_eq!(out.y[r], y[i]);
        }
        // 300 draws from 400 rows repeat some (all but certainly: about 80 repeats expected).
        let repeats = rows.windows(2).filter(|w| w[0] == w[1]).count();
        assert_eq!(repeats > 0, replacement, "{repeats} repeated rows");
    }
    assert_eq!(run(true).origin, run(true).origin, "same seed, same rows");
}

#[test]
fn same_seed_same_rows_other_seed_other_rows() {
    let (x, y) = data();
    let run = |seed| {
        Smote::new()
            .seed(seed)
            .backend(smrt::Backend::Cpu)
            .fit_resample(x.view(), &y)
            .unwrap()
            .x
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    let over = |seed| {
        RandomOverSampler::new()
            .shrinkage(0.3)
            .seed(seed)
            .fit_resample(x.view(), &y)
            .unwrap()
            .x
    };
    assert_eq!(over(1), over(1));
    assert_ne!(over(1), over(2));
    let under = |seed| {
        RandomUnderSampler::new()
            .seed(seed)
            .fit_resample(x.view(), &y)
            .unwrap()
            .origin
    };
    assert_eq!(under(1), under(1));
    assert_ne!(under(1), under(2));
}

#[test]
fn smote_on_the_gpu_equals_smote_on_the_cpu() {
    let (x, y) = data();
    let outs: Vec<_> = devices()
        .into_iter()
        .map(|d| {
            Smote::new()
                .seed(4)
                .device(d)
                .fit_resample(x.view(), &y)
                .unwrap()
        })
        .collect();
    // Same neighbours, same draws: the same rows (the interpolation runs on the host).
    for o in &outs[1..] {
        assert_eq!(o.x, outs[0].x);
        assert_eq!(o.origin, outs[0].origin);
    }
}

#[test]
fn impossible_requests_are_errors() {
    let (x, y) = data();
    let lonely: Vec<&str> = (0..73)
        .map(|i| if i == 0 { "one" } else { "many" })
        .collect();
    assert!(matches!(
        Smote::new()
            .backend(smrt::Backend::Cpu)
            .fit_resample(x.view(), &lonely),
        Err(Error::ClassTooSmall { needed: 2, .. })
    ));
    for k in [0, 65] {
        assert!(matches!(
            Smote::new().k_neighbors(k).fit_resample(x.view(), &y),
            Err(Error::InvalidConfig {
                name: "k_neighbors",
                ..
            })
        ));
    }
    assert!(matches!(
        RandomOverSampler::new()
            .shrinkage(-1.0)
            .fit_resample(x.view(), &y),
        Err(Error::InvalidConfig {
            name: "shrinkage",
            ..
        })
    ));
    let grow = Strategy::Targets(BTreeMap::from([("tiny", 5)]));
    assert!(RandomUnderSampler::new()
        .strategy(grow)
        .fit_resample(x.view(), &y)
        .is_err());
    // Finite values whose squared distances overflow f32: an error, on every device.
    let huge = ndarray::Array2::from_shape_fn((10, 3), |(i, j)| (i + j) as f32 * 1e19);
    for device in devices() {
        let name = device.name();
        let got = nearest_neighbors(&device, huge.view(), 2);
        assert!(matches!(got, Err(Error::DataModel(_))), "{name}: {got:?}");
    }
    let unknown = Strategy::Targets(BTreeMap::from([("none", 5)]));
    assert!(matches!(
        RandomOverSampler::new()
            .strategy(unknown)
            .fit_resample(x.view(), &y),
        Err(Error::UnknownClass(_))
    ));
    assert!(matches!(
        Smote::new().fit_resample(x.view(), &y[..10]),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// A class "m" of four rows (one numeric column, one categorical of two values) beside 40
/// rows of "M". The numeric spread of "m" has median standard deviation
/// `sd(0, 1, 1.5, 10) = 4.006`, so a differing category adds `16.05` to a squared distance.
fn mixed() -> (Array2<f32>, Array2<u32>, Vec<&'static str>) {
    let mut x = vec![0.0, 1.0, 1.5, 10.0];
    let mut c = vec![0, 1, 0, 0];
    let mut y = vec!["m"; 4];
    for i in 0..40 {
        x.push(100.0 + i as f32);
        c.push(i % 2);
        y.push("M");
    }
    (
        Array2::from_shape_vec((44, 1), x).unwrap(),
        Array2::from_shape_vec((44, 1), c).unwrap(),
        y,
    )
}

#[test]
fn smote_nc_neighbours_pay_for_a_differing_category_and_take_the_neighbours_category() {
    let (x, c, y) = mixed();
    let levels = [2];
    let categories = Categories {
        codes: c.view(),
        levels: &levels,
    };
    // Squared distances with the penalty (by hand): 0 -> 1: 1 + 16.05, 0 -> 2: 2.25,
    // 1 -> 2: 0.25 + 16.05, 1 -> 0: 1 + 16.05, 2 -> 0: 2.25, 3 -> 2: 72.25 (nearest of each).
    // Without the penalty row 0's nearest would be row 1.
    let nearest = [2usize, 2, 0, 2];
    for device in devices() {
        let out = Smote::new()
            .k_neighbors(1)
            .seed(3)
            .device(device)
            .fit_resample_mixed(x.view(), categories, &y)
            .unwrap();
        assert_eq!(out.class_counts()[&"m"], 40);
        assert_eq!(out.codes.dim(), (80, 1));
        assert_eq!(out.codes.slice(ndarray::s![..44, ..]), c);
        let mut bases = std::collections::BTreeSet::new();
        for r in 44..80 {
            let Origin::Synthetic { source: Some(i) } = out.origin[r] else {
                panic!("SMOTE rows have a source")
            };
            bases.insert(i);
            let j = nearest[i];
            let (lo, hi) = (x[[i, 0]].min(x[[j, 0]]), x[[i, 0]].max(x[[j, 0]]));
            assert!((lo..=hi).contains(&out.x[[r, 0]]), "row {r} from {i}");
            // k = 1: the category is the neighbour's, also for row 1 (category 1).
            assert_eq!(out.codes[[r, 0]], c[[j, 0]], "row {r} from {i}");
        }
        assert_eq!(bases.len(), 4, "draws from every row, row 0 too: {bases:?}");
    }
}

#[test]
fn categories_of_copies_and_kept_rows_are_their_source_rows() {
    let (x, c, y) = mixed();
    let levels = [2];
    let categories = Categories {
        codes: c.view(),
        levels: &levels,
    };
    let over = RandomOverSampler::new()
        .shrinkage(1.0)
        .fit_resample_mixed(x.view(), categories, &y)
        .unwrap();
    let under = RandomUnderSampler::new()
        .fit_resample_mixed(x.view(), categories, &y)
        .unwrap();
    for out in [over, under] {
        assert_eq!(out.codes.nrows(), out.x.nrows());
        for (r, o) in out.origin.iter().enumerate() {
            let (Origin::Real(i) | Origin::Synthetic { source: Some(i) }) = *o else {
                panic!("{o:?} has a source row")
            };
            assert_eq!(out.codes.row(r), c.row(i));
        }
    }
    // Codes beyond their column's count are refused.
    let bad = Array2::from_elem((44, 1), 2u32);
    let err = Smote::new()
        .fit_resample_mixed(
            x.view(),
            Categories {
                codes: bad.view(),
                levels: &levels,
            },
            &y,
        )
        .unwrap_err();
    assert!(err.to_string().contains("code 2"), "{err}");
}

#[test]
fn smote_n_neighbours_follow_the_value_difference_metric() {
    // One column of values 0, 1, 2. Class "A": 0, 0, 1, 2; class "B": 5 x 0, 25 x 1, 10 x 2.
    // P(A | v) = 2/7, 1/26, 1/11, so delta(0, 1) = 0.49, delta(0, 2) = 0.39, delta(1, 2) = 0.10:
    // the nearest row to the 1 is the 2 and to the 2 the 1 (by counting mismatches, the 1's
    // nearest would be row 0, a 0).
    let mut c = vec![0u32, 0, 1, 2];
    c.extend(std::iter::repeat_n(0, 5));
    c.extend(std::iter::repeat_n(1, 25));
    c.extend(std::iter::repeat_n(2, 10));
    let y: Vec<&str> = (0..c.len())
        .map(|i| if i < 4 { "A" } else { "B" })
        .collect();
    let codes = Array2::from_shape_vec((c.len(), 1), c.clone()).unwrap();
    let none = Array2::<f32>::zeros((c.len(), 0));
    let levels = [3];
    let categories = Categories {
        codes: codes.view(),
        levels: &levels,
    };
    let out = Smote::new()
        .k_neighbors(1)
        .fit_resample_mixed(none.view(), categories, &y)
        .unwrap();
    assert_eq!(out.class_counts()[&"A"], 40);
    assert_eq!(out.x.dim(), (80, 0));
    let want = [0u32, 0, 2, 1]; // the neighbour's value, by base row
    let mut bases = std::collections::BTreeSet::new();
    for r in 44..80 {
        let Origin::Synthetic { source: Some(i) } = out.origin[r] else {
            panic!("SMOTE-N rows have a source")
        };
        bases.insert(i);
        assert_eq!(out.codes[[r, 0]], want[i], "row {r} from {i}");
    }
    assert_eq!(bases.len(), 4, "{bases:?}");
    // The random samplers take tables without numeric columns too.
    let over = RandomOverSampler::new()
        .fit_resample_mixed(none.view(), categories, &y)
        .unwrap();
    assert_eq!(over.class_counts()[&"A"], 40);
    for (r, o) in over.origin.iter().enumerate().skip(44) {
        let Origin::Synthetic { source: Some(i) } = *o else {
            panic!("{o:?}")
        };
        assert_eq!(over.codes[[r, 0]], c[i]);
    }
}

#[test]
fn a_report_is_the_same_on_both_engines() {
    let x = random(900, 6, 21);
    let y: Vec<u8> = (0..900).map(|i| (i % 3) as u8).collect();
    let synthetic: Vec<bool> = (0..900).map(|i| i >= 500 && i % 3 != 0).collect();
    let rows = smrt::report::Rows {
        x: x.view(),
        categories: Categories::none(900),
        y: &y,
        synthetic: &synthetic,
    };
    let columns = smrt::report::Columns::numbered(6, 0);
    let reports: Vec<_> = devices()
        .iter()
        .map(|d| smrt::report::report(d, &rows, &columns).unwrap())
        .collect();
    let cpu = &reports[0];
    assert_eq!(cpu.classes.len(), 2);
    for other in &reports[1..] {
        for (a, b) in cpu.classes.iter().zip(&other.classes) {
            let (ka, kb) = (a.closeness.as_ref().unwrap(), b.closeness.as_ref().unwrap());
            for (va, vb) in [
                (ka.synthetic_to_real_median, kb.synthetic_to_real_median),
                (ka.real_to_real_median, kb.real_to_real_median),
                (ka.near_copies, kb.near_copies),
                (ka.coverage, kb.coverage),
                (ka.overlap, kb.overlap),
                (ka.real_overlap, kb.real_overlap),
            ] {
                // Neighbours at nearly equal distances may trade places on f32 rounding.
                assert!((va - vb).abs() < 0.01, "{} vs {}", va, vb);
            }
            assert_eq!(a.verdict, b.verdict);
        }
    }
}

/// `fit_synthetic` is the tail of `fit_resample_mixed`: the same rows, labels, codes and origins.
fn assert_synthetic_is_the_tail<L: smrt::Label>(
    b: &dyn Balancer<L>,
    x: ArrayView2<'_, f32>,
    c: Categories<'_>,
    y: &[L],
) {
    let all = b.fit_resample_mixed(x, c, y).unwrap();
    let synthetic = b.fit_synthetic(x, c, y, Shard::ALL).unwrap();
    let first = all.origin.iter().position(|o| o.is_synthetic());
    let first = first.unwrap_or(all.origin.len());
    assert_eq!(synthetic.origin, all.origin[first..]);
    assert_eq!(synthetic.x, all.x.slice(ndarray::s![first.., ..]));
    assert_eq!(synthetic.codes, all.codes.slice(ndarray::s![first.., ..]));
    assert_eq!(synthetic.y, all.y[first..]);
    // Shards: each slice computed alone, the slices together the whole, in order.
    for count in [1, 3, 7] {
        let parts: Vec<_> = (1..=count)
            .map(|k| {
                b.fit_synthetic(x, c, y, Shard::new(k, count).unwrap())
                    .unwrap()
            })
            .collect();
        let joined: Vec<Origin> = parts.iter().flat_map(|p| p.origin.clone()).collect();
        assert_eq!(joined, synthetic.origin, "{count} shards");
        let labels: Vec<L> = parts.iter().flat_map(|p| p.y.clone()).collect();
        assert_eq!(labels, synthetic.y, "{count} shards");
        let views: Vec<_> = parts.iter().map(|p| p.x.view()).collect();
        assert_eq!(
            ndarray::concatenate(ndarray::Axis(0), &views).unwrap(),
            synthetic.x
        );
        let views: Vec<_> = parts.iter().map(|p| p.codes.view()).collect();
        assert_eq!(
            ndarray::concatenate(ndarray::Axis(0), &views).unwrap(),
            synthetic.codes
        );
    }
}

#[test]
fn synthetic_rows_alone_are_the_rows_appended_to_the_input() {
    let (x, y) = data();
    let none = Categories::none(x.nrows());
    let samplers: Vec<Box<dyn Balancer<&str>>> = vec![
        Box::new(Smote::new().k_neighbors(3).seed(4)),
        Box::new(RandomOverSampler::new().seed(4)),
        Box::new(RandomOverSampler::new().shrinkage(0.5).seed(4)),
    ];
    for s in &samplers {
        assert_synthetic_is_the_tail(s.as_ref(), x.view(), none, &y);
        let n = s
            .fit_synthetic(x.view(), none, &y, Shard::ALL)
            .unwrap()
            .x
            .nrows();
        assert_eq!(n, (60 - 9) + (60 - 4));
    }
    // Categorical columns beside numeric ones (SMOTE-NC), and alone (SMOTE-N).
    let (x, codes, y) = mixed();
    let levels = [2];
    let c = Categories {
        codes: codes.view(),
        levels: &levels,
    };
    let mixed: Vec<Box<dyn Balancer<&str>>> = vec![
        Box::new(Smote::new().k_neighbors(2)),
        Box::new(RandomOverSampler::new()),
    ];
    for s in &mixed {
        assert_synthetic_is_the_tail(s.as_ref(), x.view(), c, &y);
        assert_synthetic_is_the_tail(s.as_ref(), Array2::zeros((44, 0)).view(), c, &y);
    }
    // An under-sampler makes no rows.
    let under = RandomUnderSampler::new()
        .fit_synthetic(x.view(), c, &y, Shard::ALL)
        .unwrap();
    assert_eq!(
        (under.x.nrows(), under.codes.nrows(), under.y.len()),
        (0, 0, 0)
    );
}
