//! `smrt bench`: throughput of each engine on fixed workloads, as a table and optionally JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;
use smrt::engine::{CpuEngine, Engine, Epilogue, Gpu, MatMul};
use smrt::rng::{Purpose, Stream};
use smrt::{
    Activation, Backend, Balancer, Device, Error, FitJob, Latent, Likelihood, Scaling, Smote, Smrt,
    Vae, VaeConfig,
};

/// One measured figure.
#[derive(Debug, Serialize)]
pub struct Figure {
    pub bench: String,
    pub engine: String,
    pub value: f64,
    pub unit: &'static str,
    pub seconds: f64,
}

/// The engines `backend` selects: auto = the CPU and a hardware GPU if there is one.
fn engines(backend: Backend) -> Result<Vec<Device>, Error> {
    Ok(match backend {
        Backend::Cpu => vec![Device::Cpu],
        Backend::Gpu => vec![Device::Gpu(Gpu::new()?)],
        Backend::Auto => {
            let mut v = vec![Device::Cpu];
            v.extend(Gpu::hardware()?.map(Device::Gpu));
            v
        }
    })
}

fn uniform(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let s = Stream::new(seed, Purpose::Init, 0);
    Array2::from_shape_fn((rows, cols), |(i, j)| s.uniform_at((i * cols + j) as u64))
}

/// A majority of `10 * class` rows and `classes` minority classes of `class` rows, 32 features.
fn classes_of(class: usize, classes: usize) -> (Array2<f32>, Vec<u8>) {
    let majority = 10 * class;
    let rows = majority + classes * class;
    let label = |i: usize| {
        if i < majority {
            0
        } else {
            1 + (i - majority) / class
        }
    };
    let s = Stream::new(2, Purpose::Init, 0);
    let x = Array2::from_shape_fn((rows, 32), |(i, j)| {
        s.normal_at((i * 32 + j) as u64) + label(i) as f32
    });
    let y = (0..rows).map(|i| label(i) as u8).collect();
    (x, y)
}

/// Best of `repeat` runs of `f`, in seconds.
fn best(repeat: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn matmul_seconds<E: Engine>(e: &mut E, s: MatMul, repeat: usize) -> Result<f64, Error> {
    let a = e.upload(&vec![0.5; s.batch * s.m * s.k])?;
    let b = e.upload(&vec![0.25; s.batch * s.k * s.n])?;
    let mut c = e.zeros(s.batch * s.m * s.n)?;
    let mut run = || {
        for _ in 0..10 {
            e.matmul(&a, &b, &mut c, s, Epilogue::None);
        }
        e.read(&c, 1).map(|_| ())
    };
    run()?; // warm-up: pipelines compile, caches fill
    Ok(best(repeat, run)? / 10.0)
}

/// Runs every workload on every engine; `quick` makes them about ten times smaller.
pub fn run(backend: Backend, quick: bool) -> Result<Vec<Figure>, Error> {
    let scale = if quick { 10 } else { 1 };
    let mut out = Vec::new();
    // On a terminal the table follows on the same screen: each figure then replaces the last on
    // one status line, cleared at the end. Elsewhere (logs, scripts) every figure is a line.
    let live = {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
    };
    let status = live.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    for device in engines(backend)? {
        let software = matches!(&device, Device::Gpu(g) if g.adapter().software);
        let engine = if software {
            format!("{} (software)", device.name())
        } else {
            device.name()
        };
        let mut push = |bench: String, value: f64, unit, seconds| {
            let line = format!("{bench:<44} {engine:<30} {value:>14.1} {unit}");
            match &status {
                Some(bar) => bar.set_message(line),
                None => eprintln!("{line}"),
            }
            out.push(Figure {
                bench,
                engine: engine.clone(),
                value,
                unit,
                seconds,
            });
        };
        for w in [64, 256, 1024] {
            let s = MatMul {
                m: 256,
                k: w,
                n: w,
                a_t: false,
                b_t: false,
                batch: 1,
                strides: None,
            };
            let secs = match &device {
                Device::Cpu => matmul_seconds(&mut CpuEngine::new(), s, 5)?,
                Device::Gpu(g) => matmul_seconds(&mut g.engine()?, s, 5)?,
            };
            let gflops = 2.0 * (s.m * s.k * s.n) as f64 / secs / 1e9;
            push(format!("matmul 256x{w}x{w}"), gflops, "GFLOP/s", secs);
        }
        // Ten models' layer products (batch 64, 32 -> 64 units): ten dispatches, or one batch.
        let layer = MatMul::new(64, 32, 64);
        for (name, s, products) in [
            ("matmul 64x32x64, 10 one by one", layer, 10),
            (
                "matmul 64x32x64, 10 in one batch",
                MatMul { batch: 10, ..layer },
                1,
            ),
        ] {
            let secs = products as f64
                * match &device {
                    Device::Cpu => matmul_seconds(&mut CpuEngine::new(), s, 5)?,
                    Device::Gpu(g) => matmul_seconds(&mut g.engine()?, s, 5)?,
                };
            let gflops = 2.0 * (10 * layer.m * layer.k * layer.n) as f64 / secs / 1e9;
            push(name.to_string(), gflops, "GFLOP/s", secs);
        }
        // The cuBLAS comparison shape: minutes on a software adapter, so hardware GPUs only.
        if let (Device::Gpu(g), false, false) = (&device, software, quick) {
            let n = 4096;
            let s = MatMul {
                m: n,
                k: n,
                n,
                a_t: false,
                b_t: false,
                batch: 1,
                strides: None,
            };
            let secs = matmul_seconds(&mut g.engine()?, s, 3)?;
            let gflops = 2.0 * (n * n * n) as f64 / secs / 1e9;
            push(format!("matmul {n}x{n}x{n}"), gflops, "GFLOP/s", secs);
        }
        let rows = 10_000 / scale;
        let x = uniform(rows, 64, 1);
        for hidden in [128, 512] {
            let cfg = VaeConfig {
                hidden: vec![hidden],
                latent: Latent::Count(16),
                activation: Activation::Sigmoid,
                likelihood: Likelihood::Bernoulli,
                scaling: Scaling::None,
                beta: 1.0,
                clip_norm: None,
                batch_size: 256,
                learning_rate: 1e-3,
                epochs: 2,
                min_steps: 0, // exactly 2 epochs: the throughput counts them
                ..VaeConfig::default()
            };
            let secs = best(2, || Vae::fit_on(&device, x.view(), &cfg).map(|_| ()))?;
            let bench = format!("train {rows}x64 h{hidden} l16 b256 (2 epochs)");
            push(bench, (2 * rows) as f64 / secs, "rows/s", secs);
        }
        let cfg = VaeConfig {
            hidden: vec![128],
            latent: Latent::Count(16),
            epochs: 1,
            ..VaeConfig::default()
        };
        let vae = Vae::fit_on(&Device::Cpu, x.view(), &cfg)?;
        let n = 1_000_000 / scale;
        let secs = best(2, || vae.generate_on(&device, n, 3).map(|_| ()))?;
        push(
            format!("generate {n} rows, decoder 16-128-64"),
            n as f64 / secs,
            "rows/s",
            secs,
        );

        // SMOTE and SMRT on the data of shared/bench/smote_speed.py (1:20).
        let total = 100_000 / scale;
        let minority = total / 21;
        let s = Stream::new(0, Purpose::Init, 0);
        let xs = Array2::from_shape_fn((total, 32), |(i, j)| {
            s.normal_at((i * 32 + j) as u64) + if i < minority { 1.0 } else { 0.0 }
        });
        let y: Vec<u8> = (0..total).map(|i| u8::from(i < minority)).collect();
        let synthetic = (total - 2 * minority) as f64;
        let smote = Smote::new().device(device.clone());
        let secs = best(3, || smote.fit_resample(xs.view(), &y).map(|_| ()))?;
        push(
            format!("smote {total}x32 1:20 k5"),
            synthetic / secs,
            "synthetic rows/s",
            secs,
        );
        let smrt = Smrt::builder()
            .epochs(20)
            .min_steps(0)
            .device(device.clone())
            .build()?;
        let secs = best(1, || smrt.fit_resample(xs.view(), &y).map(|_| ()))?;
        push(
            format!("smrt {total}x32 1:20 (20 epochs)"),
            synthetic / secs,
            "synthetic rows/s",
            secs,
        );

        // Work sent per optimiser step and per epoch with SMRT's default model, on a GPU: fits
        // of one and of three epochs, the difference halved (so fixed costs drop out).
        if let Device::Gpu(g) = &device {
            let (rows, batch) = (1_000, VaeConfig::default().batch_size);
            let x = uniform(rows, 32, 5);
            // `models` fits of the default model on these rows (seeds 0..), trained together.
            let counted = |epochs, models: u64| -> Result<smrt::engine::Counts, Error> {
                let jobs: Vec<FitJob<'_>> = (0..models)
                    .map(|seed| {
                        let cfg = VaeConfig {
                            epochs,
                            min_steps: 0,
                            seed,
                            ..VaeConfig::default()
                        };
                        FitJob::new(x.view(), cfg)
                    })
                    .collect();
                let before = g.counts();
                Vae::fit_many(&device, &jobs)?;
                Ok(g.counts() - before)
            };
            let (one, three) = (counted(1, 1)?, counted(3, 1)?);
            let steps = rows.div_ceil(batch) as f64;
            let per_epoch = |a: u64, b: u64| (b - a) as f64 / 2.0;
            let dispatches = per_epoch(one.dispatches, three.dispatches);
            let submissions = per_epoch(one.submissions, three.submissions);
            let (ten_one, ten_three) = (counted(1, 10)?, counted(3, 10)?);
            push(
                format!("dispatches per step, 10 x {rows}x32 together"),
                per_epoch(ten_one.dispatches, ten_three.dispatches) / steps,
                "dispatches",
                0.0,
            );
            push(
                format!("dispatches per step, {rows}x32 b{batch} default model"),
                dispatches / steps,
                "dispatches",
                0.0,
            );
            push(
                format!("submissions per epoch, {rows}x32 b{batch} default model"),
                submissions,
                "submissions",
                0.0,
            );
        }

        // One class against ten of the same size: how well the engine overlaps independent fits.
        let class = 1_000 / scale;
        for classes in [1, 10] {
            let (x, y) = classes_of(class, classes);
            let smrt = Smrt::builder()
                .epochs(20)
                .min_steps(0)
                .device(device.clone())
                .build()?;
            let secs = best(1, || smrt.fit_resample(x.view(), &y).map(|_| ()))?;
            push(
                format!("smrt {classes} x {class}x32 classes (20 epochs)"),
                (classes * class * 20) as f64 / secs,
                "rows/s",
                secs,
            );
        }

        // A report on 100,000 real and 100,000 synthetic rows of 32 features, two classes.
        let half = 100_000 / scale;
        let s = Stream::new(1, Purpose::Init, 0);
        let xr = Array2::from_shape_fn((2 * half, 32), |(i, j)| {
            s.normal_at((i * 32 + j) as u64) + if i % 2 == 1 { 0.5 } else { 0.0 }
        });
        let y: Vec<u8> = (0..2 * half).map(|i| (i % 2) as u8).collect();
        let synthetic: Vec<bool> = (0..2 * half).map(|i| i >= half).collect();
        let rows = smrt::report::Rows {
            x: xr.view(),
            categories: smrt::Categories::none(2 * half),
            y: &y,
            synthetic: &synthetic,
        };
        let columns = smrt::report::Columns::numbered(32, 0);
        let secs = best(1, || {
            smrt::report::report(&device, &rows, &columns).map(|_| ())
        })?;
        push(
            format!("report {half}+{half}x32 (real+synthetic)"),
            (2 * half) as f64 / secs,
            "rows/s",
            secs,
        );
    }
    if let Some(bar) = status {
        bar.finish_and_clear();
    }
    Ok(out)
}

/// The figures as a table.
pub fn table(figures: &[Figure]) -> String {
    let mut s = format!("{:<44} {:<30} {:>14} unit\n", "bench", "engine", "value");
    for f in figures {
        s += &format!(
            "{:<44} {:<30} {:>14.1} {}\n",
            f.bench, f.engine, f.value, f.unit
        );
    }
    s
}

/// Writes the figures as JSON (with the version and date of the run).
pub fn write_json(path: &Path, figures: &[Figure]) -> Result<(), Error> {
    let doc = serde_json::json!({
        "smrt": env!("CARGO_PKG_VERSION"),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "figures": figures,
    });
    let bytes = serde_json::to_vec_pretty(&doc).expect("figures serialise");
    smrt::table::write_atomic(path, |w| Ok(w.write_all(&bytes)?))
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Engines: auto (the CPU, and a hardware GPU if there is one), gpu (any adapter) or cpu.
    #[arg(long, default_value = "auto")]
    pub backend: Backend,
    /// Workloads ten times smaller (a quick look).
    #[arg(long)]
    pub quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn bench(args: BenchArgs) -> Result<(), Error> {
    let figures = run(args.backend, args.quick)?;
    print!("{}", table(&figures));
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}
