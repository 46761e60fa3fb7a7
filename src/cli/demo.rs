//! `smrt demo` and `smrt info`.

use std::path::PathBuf;
use std::time::Instant;

use smrt::engine::{adapters, Gpu};
use smrt::{Backend, Balancer, Device, Error, Smote};

use super::{balancer, count};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The digit made rare.
    #[arg(long, default_value = "0")]
    pub digit: String,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training epochs per class.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Where to compute: auto, gpu or cpu (as for `balance`).
    #[arg(long, default_value = "auto")]
    pub backend: Backend,
    /// Write `digits.png` here (a row of real rare digits, one of SMOTE's, one of SMRT's) and the
    /// reports of both runs (`report-smrt/`, `report-smote/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn demo(args: DemoArgs) -> Result<(), Error> {
    let digits = smrt::data::digits()?;
    let mut keep = Vec::new();
    let mut seen = 0usize;
    for (i, label) in digits.y.iter().enumerate() {
        if *label == args.digit {
            seen += 1;
            // One row in ten of the rare digit stays.
            if seen % 10 != 1 {
                continue;
            }
        }
        keep.push(i);
    }
    if seen == 0 {
        return Err(Error::UnknownClass(format!(
            "{:?} (digits are 0..9)",
            args.digit
        )));
    }
    let x = digits.x.select(ndarray::Axis(0), &keep);
    let y: Vec<String> = keep.iter().map(|&i| digits.y[i].clone()).collect();
    let device = super::device(args.backend, false)?;
    let smrt = balancer(args.seed, args.epochs, device.clone())?;
    let started = Instant::now();
    let out = smrt.fit_resample(x.view(), &y)?;
    let secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let smote = Smote::new()
        .seed(args.seed)
        .device(device.clone())
        .fit_resample(x.view(), &y)?;
    let smote_secs = started.elapsed().as_secs_f64();
    let before = count(&y);
    let after = out.class_counts();
    println!("digit  before  after");
    for (label, n) in &before {
        println!("{label:>5}  {n:>6}  {:>5}", after[label]);
    }
    let model = &out.models[&args.digit];
    let last = model.history().epochs.last().map_or(f64::NAN, |e| e.total);
    println!(
        "digit {} made rare ({} of {} rows kept); {} synthetic rows; {} epochs, final loss {last:.3}; {secs:.2} s on {}",
        args.digit,
        before[&args.digit],
        seen,
        out.synthetic_count(),
        model.history().epochs.len(),
        device.name(),
    );
    println!(
        "SMOTE (k = 5): {} synthetic rows in {smote_secs:.3} s",
        smote.synthetic_count()
    );
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let rows_of = |r: &smrt::Resampled<String>, synthetic: bool| {
            let idx: Vec<usize> = (0..r.y.len())
                .filter(|&i| r.y[i] == args.digit && r.origin[i].is_synthetic() == synthetic)
                .take(12)
                .collect();
            r.x.select(ndarray::Axis(0), &idx)
        };
        let (real, smote_rows, smrt_rows) = (
            rows_of(&out, false),
            rows_of(&smote, true),
            rows_of(&out, true),
        );
        let path = dir.join("digits.png");
        super::picture::digit_grid(
            &path,
            &[real.view(), smote_rows.view(), smrt_rows.view()],
            12,
        )?;
        println!(
            "{}: real {d}s (top), SMOTE's (middle), SMRT's (bottom)",
            path.display(),
            d = args.digit
        );
        for (name, r) in [("smrt", &out), ("smote", &smote)] {
            let marks = super::report::marks(&r.origin);
            let report = super::report::of_table(
                &device,
                &digits,
                r.x.view(),
                r.codes.view(),
                &r.y,
                &marks,
            )?;
            let at = dir.join(format!("report-{name}"));
            super::report::write_dir(&report, &at)?;
            println!("{}: the report of {name}'s rows", at.display());
        }
    }
    Ok(())
}

pub fn info() -> Result<(), Error> {
    println!("smrt {}", env!("CARGO_PKG_VERSION"));
    let found = adapters();
    if found.is_empty() {
        println!("adapters: none found");
    } else {
        println!("adapters (best first):");
        for a in &found {
            let kind = if a.software { "  [software]" } else { "" };
            println!("  {a}{kind}");
        }
    }
    let device = Device::new(Backend::Auto)?;
    println!("auto picks: {}", device.name());
    let gpu = match device {
        Device::Gpu(g) => Some(g),
        Device::Cpu => Gpu::new().ok(),
    };
    if let Some(g) = gpu {
        let l = g.limits();
        println!("limits of {}:", g.adapter().name);
        for (name, value) in [
            (
                "max_storage_buffer_binding_size",
                l.max_storage_buffer_binding_size,
            ),
            ("max_buffer_size", l.max_buffer_size),
            (
                "max_compute_workgroups_per_dimension",
                l.max_compute_workgroups_per_dimension.into(),
            ),
            (
                "max_compute_invocations_per_workgroup",
                l.max_compute_invocations_per_workgroup.into(),
            ),
            (
                "max_compute_workgroup_storage_size",
                l.max_compute_workgroup_storage_size.into(),
            ),
        ] {
            println!("  {name:<38} {value}");
        }
    }
    Ok(())
}
