//! `Vae::fit_many`: models trained together are the models trained alone.
//!
//! On the CPU engine bit for bit (the oracle: every batched kernel computes each model exactly
//! as alone, and padding rows add exact zeros); on the GPU engine (lavapipe in CI) to the same
//! standard against that engine's fits alone. The GPU part skips, and says so, only where wgpu
//! finds no adapter at all, and never with `SMRT_TEST_REQUIRE_GPU` set (as CI sets it).

use ndarray::Array2;
use smrt::engine::{CpuEngine, Engine, Gpu};
use smrt::rng::{Purpose, Stream};
use smrt::{Device, EarlyStopping, FitJob, Vae, VaeConfig};

fn rows(n: usize, cols: usize, seed: u64) -> Array2<f32> {
    let s = Stream::new(seed, Purpose::Init, 0);
    Array2::from_shape_fn((n, cols), |(i, j)| {
        s.normal_at((i * cols + j) as u64) * (1.0 + j as f32) + i as f32 * 0.01
    })
}

/// Every number a fit produced: its layers, its learned variance, and its epoch losses.
fn fingerprint(v: &Vae) -> Vec<f64> {
    let layers = v.encoder().iter().chain(v.decoder());
    let mut out: Vec<f64> = layers
        .flat_map(|d| d.w.iter().chain(d.b.iter()).map(|&x| f64::from(x)))
        .collect();
    out.extend(
        v.output_logvar()
            .into_iter()
            .flatten()
            .map(|&x| f64::from(x)),
    );
    for e in &v.history().epochs {
        out.extend([e.reconstruction, e.kl, e.l2, e.total]);
    }
    out
}

/// Small fits of one network on classes of different sizes, seeds, batches and schedules; pairs
/// with dropout, with an L2 penalty, with a learned variance and with two categorical columns
/// and a yes/no one (each pair a group of its own); and one whose data has a column fewer
/// (another shape, so alone).
fn jobs(data: &[(Array2<f32>, Array2<u32>)]) -> Vec<FitJob<'_>> {
    let base = VaeConfig {
        hidden: vec![12, 6],
        latent: smrt::Latent::Count(3),
        epochs: 4,
        min_steps: 0,
        batch_size: 16,
        ..VaeConfig::default()
    };
    let configs = [
        // 3 batches an epoch for 100 epochs: 300 steps, so a chunk of steps (256 at most) ends
        // inside an epoch.
        VaeConfig {
            epochs: 100,
            ..base.clone()
        },
        VaeConfig {
            seed: 5,
            ..base.clone()
        },
        // A batch larger than any other's: the others are padded to it.
        VaeConfig {
            seed: 9,
            batch_size: 24,
            epochs: 3,
            ..base.clone()
        },
        // Early stopping that ends it after two epochs without improvement, mid-chunk of
        // the others.
        VaeConfig {
            seed: 2,
            epochs: 9,
            early_stopping: Some(EarlyStopping {
                patience: 1,
                min_delta: 1e6,
            }),
            ..base.clone()
        },
        VaeConfig {
            seed: 3,
            dropout: 0.2,
            ..base.clone()
        },
        VaeConfig {
            seed: 8,
            dropout: 0.2,
            batch_size: 8,
            ..base.clone()
        },
        VaeConfig {
            seed: 10,
            l2: 0.01,
            ..base.clone()
        },
        VaeConfig {
            seed: 11,
            l2: 0.01,
            epochs: 6,
            ..base.clone()
        },
        VaeConfig {
            seed: 12,
            likelihood: smrt::Likelihood::GaussianLearned,
            ..base.clone()
        },
        VaeConfig {
            seed: 13,
            likelihood: smrt::Likelihood::GaussianLearned,
            epochs: 5,
            ..base.clone()
        },
        // Categorical columns (the codes of the data below).
        VaeConfig {
            seed: 14,
            ..base.clone()
        },
        VaeConfig {
            seed: 15,
            batch_size: 8,
            ..base.clone()
        },
        VaeConfig {
            seed: 4,
            ..base.clone()
        },
        // Fewer rows than the batch: one batch an epoch, of all of them.
        VaeConfig {
            seed: 6,
            epochs: 7,
            ..base
        },
    ];
    data.iter()
        .zip(configs)
        .map(|((x, codes), c)| FitJob::new(x.view(), c).with_codes(codes.view()))
        .collect()
}

fn data() -> Vec<(Array2<f32>, Array2<u32>)> {
    let numeric = |n, cols, seed| (rows(n, cols, seed), Array2::zeros((n, 0)));
    // Three categories in one column and two in the other, all present in every class, and a
    // numeric yes/no column (a two-way head after the categorical ones).
    let mixed = |n, seed| {
        let codes = Array2::from_shape_fn((n, 2), |(i, j)| ((i * 5 + j) % (3 - j)) as u32);
        let mut x = rows(n, 4, seed);
        x.column_mut(3)
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = [-1.0, 2.5][usize::from(i % 4 == 0)]);
        (x, codes)
    };
    vec![
        numeric(40, 5, 1),
        numeric(23, 5, 2),
        numeric(57, 5, 3),
        numeric(35, 5, 4),
        numeric(30, 5, 5),
        numeric(21, 5, 9),
        numeric(33, 5, 10),
        numeric(26, 5, 11),
        numeric(24, 5, 12),
        numeric(31, 5, 13),
        mixed(27, 14),
        mixed(38, 15),
        numeric(29, 4, 6),
        numeric(9, 5, 7),
    ]
}

/// Each job fitted by itself (a list of one job trains as `Vae::fit_with` does).
fn alone<E: Engine>(e: &mut E, jobs: &[FitJob<'_>]) -> Vec<Vec<f64>> {
    jobs.iter()
        .map(|j| {
            let model = Vae::fit_many_with(e, std::slice::from_ref(j)).unwrap();
            fingerprint(&model[0])
        })
        .collect()
}

fn together<E: Engine>(e: &mut E, jobs: &[FitJob<'_>]) -> Vec<Vec<f64>> {
    let models = Vae::fit_many_with(e, jobs).unwrap();
    for (m, j) in models.iter().zip(jobs) {
        assert_eq!(m.config(), &j.config);
    }
    models.iter().map(fingerprint).collect()
}

#[test]
fn models_trained_together_on_the_cpu_engine_are_those_trained_alone_bit_for_bit() {
    let data = data();
    let jobs = jobs(&data);
    let want = alone(&mut CpuEngine::new(), &jobs);
    // A list of one job is the plain fit.
    for (j, w) in jobs.iter().zip(&want).filter(|(j, _)| j.codes.ncols() == 0) {
        let plain = Vae::fit_with(&mut CpuEngine::new(), j.x, &j.config).unwrap();
        assert_eq!(&fingerprint(&plain), w);
    }
    let got = together(&mut CpuEngine::new(), &jobs);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "job {i}");
    }
    // The schedules differ as configured: early stopping ended job 3 before its nine epochs.
    let models = Vae::fit_many_with(&mut CpuEngine::new(), &jobs).unwrap();
    let epochs: Vec<usize> = models.iter().map(|m| m.history().epochs.len()).collect();
    assert_eq!(epochs, [100, 4, 3, 2, 4, 4, 4, 6, 4, 5, 4, 4, 4, 7]);
    assert_eq!(
        models[10].columns().binary(),
        &[3],
        "the yes/no column has a head"
    );
    assert!(models[3].history().stopped_early);
}

#[test]
fn fit_many_on_the_cpu_device_gives_each_fit_alone() {
    let data = data();
    let jobs = jobs(&data);
    let got = Vae::fit_many(&Device::Cpu, &jobs).unwrap();
    let want = alone(&mut CpuEngine::new(), &jobs);
    let got: Vec<Vec<f64>> = got.iter().map(fingerprint).collect();
    assert_eq!(got, want);
}

#[test]
fn bad_jobs_are_refused_with_the_fits_error() {
    let data = data();
    let mut jobs = jobs(&data);
    let one = rows(1, 5, 8);
    jobs.push(FitJob::new(one.view(), VaeConfig::default()));
    let err = Vae::fit_many_with(&mut CpuEngine::new(), &jobs).unwrap_err();
    assert!(matches!(err, smrt::Error::ClassTooSmall { .. }), "{err}");
}

#[test]
fn models_trained_together_on_the_gpu_engine_are_those_trained_alone() {
    let g = match Gpu::new() {
        Ok(g) => g,
        Err(smrt::Error::NoGpu(why)) => {
            assert!(
                std::env::var_os("SMRT_TEST_REQUIRE_GPU").is_none(),
                "SMRT_TEST_REQUIRE_GPU is set but there is no GPU: {why}"
            );
            eprintln!("GPU fit_many test skipped: {why}");
            return;
        }
        Err(e) => panic!("opening the GPU failed: {e}"),
    };
    let data = data();
    let jobs = jobs(&data);
    let want = alone(&mut g.engine().unwrap(), &jobs);
    let got = together(&mut g.engine().unwrap(), &jobs);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), w.len(), "job {i}");
        for (k, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "job {i} value {k}: together {a}, alone {b}"
            );
        }
    }
    // And through the device: `fit_many` on a GPU trains the group together.
    let models = Vae::fit_many(&Device::Gpu(g), &jobs).unwrap();
    let got: Vec<Vec<f64>> = models.iter().map(fingerprint).collect();
    assert_eq!(got.len(), want.len());
}

#[test]
fn smrt_on_a_gpu_trains_its_classes_together_as_each_would_train_alone() {
    let Ok(g) = Gpu::new() else {
        // The test above has already said why, or failed where a GPU is required.
        return;
    };
    let device = Device::Gpu(g.clone());
    // Three minority classes (8, 25 and 41 rows: the smallest too small for the held-out choice
    // of generation, so it trains one model where the others train two) and a majority.
    let sizes = [(0u8, 90), (1, 8), (2, 25), (3, 41)];
    let x = ndarray::concatenate(
        ndarray::Axis(0),
        &sizes
            .iter()
            .map(|&(c, n)| rows(n, 4, 10 + u64::from(c)))
            .collect::<Vec<_>>()
            .iter()
            .map(|a| a.view())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let y: Vec<u8> = sizes
        .iter()
        .flat_map(|&(c, n)| std::iter::repeat_n(c, n))
        .collect();
    let smrt = smrt::Smrt::builder()
        .device(device.clone())
        .epochs(6)
        .min_steps(0)
        .seed(3)
        .build()
        .unwrap();
    let before = g.counts();
    let models = smrt.fit_models(x.view(), &y, None).unwrap();
    let together = g.counts() - before;
    assert_eq!(models.len(), 3);
    let before = g.counts();
    for (label, model) in &models {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == *label).collect();
        let class_x = x.select(ndarray::Axis(0), &rows);
        let alone = Vae::fit_on(&device, class_x.view(), model.config()).unwrap();
        assert_eq!(fingerprint(model), fingerprint(&alone), "class {label}");
        assert!(model.preferred_generation().is_some());
    }
    // The three class models alone take more dispatches than all five fits (the held-out
    // fits of the choice included) together.
    let alone = g.counts() - before;
    assert!(
        together.dispatches < alone.dispatches,
        "together {} dispatches, the class models alone {}",
        together.dispatches,
        alone.dispatches
    );
}

#[test]
fn smrt_on_a_gpu_reports_each_class_epochs_and_stops_when_asked() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let Ok(g) = Gpu::new() else {
        return; // said by the test above, or failed there where a GPU is required
    };
    let sizes = [(0u8, 60), (1, 20), (2, 30)];
    let parts: Vec<_> = sizes
        .iter()
        .map(|&(c, n)| rows(n, 3, 30 + u64::from(c)))
        .collect();
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    let x = ndarray::concatenate(ndarray::Axis(0), &views).unwrap();
    let y: Vec<u8> = sizes
        .iter()
        .flat_map(|&(c, n)| std::iter::repeat_n(c, n))
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (log, flag) = (Arc::clone(&seen), Arc::clone(&stop));
    let smrt = smrt::Smrt::builder()
        .device(Device::Gpu(g))
        .epochs(5)
        .min_steps(0)
        .on_epoch(move |class: &u8, epoch, _| log.lock().unwrap().push((*class, epoch)))
        .stop_flag(Arc::clone(&stop))
        .build()
        .unwrap();
    smrt.fit_models(x.view(), &y, None).unwrap();
    // Every epoch of each grown class's own model, in order; none of the held-out fits'.
    let mut seen_now = seen.lock().unwrap().clone();
    seen_now.sort();
    let want: Vec<(u8, usize)> = [1u8, 2]
        .iter()
        .flat_map(|&c| (0..5).map(move |e| (c, e)))
        .collect();
    assert_eq!(seen_now, want);
    flag.store(true, Ordering::SeqCst);
    let err = smrt.fit_models(x.view(), &y, None).unwrap_err();
    assert!(matches!(err, smrt::Error::Interrupted), "{err}");
}
