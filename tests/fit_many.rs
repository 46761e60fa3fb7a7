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

/// Small fits of one network on classes of different sizes, seeds, batches and schedules; two
/// with dropout and two with an L2 penalty (each pair a group of its own); one alone with a
/// learned variance (no batched kernels), and one whose data has a column fewer (another
/// shape).
fn jobs(data: &[Array2<f32>]) -> Vec<FitJob<'_>> {
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
        .map(|(x, c)| FitJob::new(x.view(), c))
        .collect()
}

fn data() -> Vec<Array2<f32>> {
    vec![
        rows(40, 5, 1),
        rows(23, 5, 2),
        rows(57, 5, 3),
        rows(35, 5, 4),
        rows(30, 5, 5),
        rows(21, 5, 9),
        rows(33, 5, 10),
        rows(26, 5, 11),
        rows(24, 5, 12),
        rows(29, 4, 6),
        rows(9, 5, 7),
    ]
}

fn alone<E: Engine>(e: &mut E, jobs: &[FitJob<'_>]) -> Vec<Vec<f64>> {
    jobs.iter()
        .map(|j| fingerprint(&Vae::fit_with(e, j.x, &j.config).unwrap()))
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
    let got = together(&mut CpuEngine::new(), &jobs);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "job {i}");
    }
    // The schedules differ as configured: early stopping ended job 3 before its nine epochs.
    let models = Vae::fit_many_with(&mut CpuEngine::new(), &jobs).unwrap();
    let epochs: Vec<usize> = models.iter().map(|m| m.history().epochs.len()).collect();
    assert_eq!(epochs, [100, 4, 3, 2, 4, 4, 4, 6, 4, 4, 7]);
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
