//! The `smrt` command: balance CSV files from the shell.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use smrt::engine::{adapters, Gpu};
use smrt::models::SavedModels;
use smrt::table::Table;
use smrt::{
    Backend, Balancer, Device, Error, RandomOverSampler, RandomUnderSampler, Smote, Smrt,
    SmrtBuilder, Strategy,
};

/// Repair class imbalance in tabular data with variational auto-encoders.
#[derive(Parser)]
#[command(name = "smrt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Balance a CSV file: input rows first and unchanged, then synthetic rows.
    Balance(BalanceArgs),
    /// Balance the embedded digits data with one digit made rare, and print class counts.
    Demo(DemoArgs),
    /// Train and save one model per class that needs rows (or per --class), without generating.
    Fit(FitArgs),
    /// Stream N synthetic rows of one class from saved models into a CSV file.
    Generate(GenerateArgs),
    /// Print the version, the GPU adapters found, the engine `auto` picks, and its limits.
    Info,
}

#[derive(clap::Args)]
struct FitArgs {
    /// CSV file with a header row.
    #[arg(long)]
    input: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long)]
    label: Option<String>,
    /// Directory for the models (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// A class to model (repeatable; default: every class except the majority).
    #[arg(long = "class")]
    classes: Vec<String>,
    /// Seed of all randomness (the same seed as `balance` gives the same models).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training epochs per class.
    #[arg(long)]
    epochs: Option<usize>,
    /// Where to compute: auto, gpu or cpu (as for `balance`).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Directory written by `smrt fit` or `balance --save-models`.
    #[arg(long)]
    models: PathBuf,
    /// The class to draw rows of.
    #[arg(long)]
    class: String,
    /// Number of rows.
    #[arg(long)]
    n: usize,
    /// The CSV file to write (header: the training data's columns).
    #[arg(long)]
    output: PathBuf,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to compute: auto, gpu or cpu (as for `balance`).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

#[derive(clap::Args)]
struct BalanceArgs {
    /// CSV file with a header row.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the balanced CSV (never the input file).
    #[arg(long)]
    output: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long)]
    label: Option<String>,
    /// Bring every class up to at least RATIO x the majority count, RATIO in (0, 1]
    /// (default: every class up to the majority count).
    #[arg(long, allow_hyphen_values = true)]
    ratio: Option<f32>,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training epochs per class (smrt).
    #[arg(long)]
    epochs: Option<usize>,
    /// The resampler: smrt (VAEs), smote, random-over (copies, optionally jittered with
    /// --shrinkage) or random-under (drops rows of the large classes).
    #[arg(long, value_enum, default_value_t = Method::Smrt)]
    method: Method,
    /// Neighbours per row (smote).
    #[arg(long, default_value_t = 5)]
    k_neighbors: usize,
    /// Noise on the copies of random-over: a smoothed bootstrap, 0 for exact copies.
    #[arg(long, allow_hyphen_values = true)]
    shrinkage: Option<f32>,
    /// Save the models trained (smrt) into this directory, for `generate` or a later `--models`.
    #[arg(long)]
    save_models: Option<PathBuf>,
    /// Reuse the models saved in this directory (smrt); classes without one are trained.
    #[arg(long)]
    models: Option<PathBuf>,
    /// Where to compute: auto (a hardware GPU if present, else the CPU; the SMRT_BACKEND
    /// environment variable can set it), gpu (any adapter, software ones too) or cpu.
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// The resamplers of `balance --method`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Method {
    Smrt,
    Smote,
    RandomOver,
    RandomUnder,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// The digit made rare.
    #[arg(long, default_value = "0")]
    digit: String,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training epochs per class.
    #[arg(long)]
    epochs: Option<usize>,
    /// Where to compute: auto, gpu or cpu (as for `balance`).
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Balance(args) => balance(args),
        Command::Demo(args) => demo(args),
        Command::Fit(args) => fit(args),
        Command::Generate(args) => generate(args),
        Command::Info => info(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn builder(
    ratio: Option<f32>,
    seed: u64,
    epochs: Option<usize>,
    device: Device,
) -> SmrtBuilder<String> {
    let mut b = Smrt::builder().seed(seed).device(device);
    if let Some(r) = ratio {
        b = b.strategy(Strategy::Ratio(r));
    }
    if let Some(n) = epochs {
        b = b.epochs(n);
    }
    b
}

fn balancer(
    ratio: Option<f32>,
    seed: u64,
    epochs: Option<usize>,
    device: Device,
) -> Result<Smrt<String>, Error> {
    builder(ratio, seed, epochs, device).build()
}

fn fit(args: FitArgs) -> Result<(), Error> {
    let table = Table::read_csv(&args.input, args.label.as_deref())?;
    let device = Device::new(args.backend)?;
    let smrt = balancer(None, args.seed, args.epochs, device.clone())?;
    let started = Instant::now();
    let classes = (!args.classes.is_empty()).then_some(args.classes.as_slice());
    let models = smrt.fit_models(table.x.view(), &table.y, classes)?;
    let saved = SavedModels {
        label: table.label_name().to_string(),
        features: table.feature_names(),
        models,
    };
    saved.save(&args.out)?;
    eprintln!(
        "{} model(s) saved to {} in {:.2} s on {}",
        saved.models.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        device.name()
    );
    Ok(())
}

/// Rows per piece of `generate`: the memory it holds whatever N is.
const GENERATE_PIECE: usize = 65_536;

fn generate(args: GenerateArgs) -> Result<(), Error> {
    let saved = SavedModels::load(&args.models)?;
    let Some(vae) = saved.models.get(&args.class) else {
        return Err(Error::Model {
            path: args.models.clone(),
            reason: format!(
                "no model for class {:?} (there are models for {:?})",
                args.class,
                saved.models.keys().collect::<Vec<_>>()
            ),
        });
    };
    if same_file(&args.models.join(smrt::models::INDEX), &args.output) {
        return Err(Error::InvalidConfig {
            name: "output",
            reason: "is the model index".into(),
        });
    }
    let device = Device::new(args.backend)?;
    let started = Instant::now();
    let mut header = saved.features.clone();
    header.push(saved.label.clone());
    smrt::table::write_atomic(&args.output, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(&header)?;
        let mut fields: Vec<String> = Vec::with_capacity(header.len());
        for start in (0..args.n).step_by(GENERATE_PIECE) {
            let end = (start + GENERATE_PIECE).min(args.n);
            let rows = vae.generate_range_on(&device, start..end, args.seed)?;
            for row in rows.rows() {
                fields.clear();
                fields.extend(row.iter().map(|v| v.to_string()));
                fields.push(args.class.clone());
                out.write_record(&fields)?;
            }
        }
        out.flush()?;
        Ok(())
    })?;
    eprintln!(
        "{} rows of class {} in {:.2} s on {}",
        args.n,
        args.class,
        started.elapsed().as_secs_f64(),
        device.name()
    );
    Ok(())
}

fn balance(args: BalanceArgs) -> Result<(), Error> {
    if same_file(&args.input, &args.output) {
        return Err(Error::InvalidConfig {
            name: "output",
            reason: "is the input file; the input is never overwritten".into(),
        });
    }
    let not_for = |flag: &'static str, method: &str| {
        Err(Error::InvalidConfig {
            name: flag,
            reason: format!("does not apply to --method {method}"),
        })
    };
    if args.shrinkage.is_some() && args.method != Method::RandomOver {
        return not_for("shrinkage", "other than random-over");
    }
    if args.epochs.is_some() && args.method != Method::Smrt {
        return not_for("epochs", "other than smrt");
    }
    if (args.models.is_some() || args.save_models.is_some()) && args.method != Method::Smrt {
        return not_for("models", "other than smrt");
    }
    let strategy = match args.ratio {
        Some(r) => Strategy::Ratio(r),
        None => Strategy::NotMajority,
    };
    strategy.validate()?;
    if args.method == Method::Smrt {
        // Settings are checked before any file is read.
        balancer(args.ratio, args.seed, args.epochs, Device::Cpu)?;
    }
    let table = Table::read_csv(&args.input, args.label.as_deref())?;
    let device = match args.method {
        Method::Smrt | Method::Smote => Device::new(args.backend)?,
        Method::RandomOver | Method::RandomUnder => Device::Cpu,
    };
    let sampler: Box<dyn Balancer<String>> = match args.method {
        Method::Smrt => {
            let mut b = builder(args.ratio, args.seed, args.epochs, device.clone());
            if let Some(dir) = &args.models {
                let saved = SavedModels::load(dir)?;
                saved.check_columns(dir, table.label_name(), &table.feature_names())?;
                for (class, vae) in saved.models {
                    b = b.prefit(class, vae);
                }
            }
            Box::new(b.build()?)
        }
        Method::Smote => Box::new(
            Smote::new()
                .strategy(strategy)
                .k_neighbors(args.k_neighbors)
                .seed(args.seed)
                .device(device.clone()),
        ),
        Method::RandomOver => {
            let mut s = RandomOverSampler::new().strategy(strategy).seed(args.seed);
            if let Some(v) = args.shrinkage {
                s = s.shrinkage(v);
            }
            Box::new(s)
        }
        Method::RandomUnder => {
            Box::new(RandomUnderSampler::new().strategy(strategy).seed(args.seed))
        }
    };
    let started = Instant::now();
    let out = sampler.fit_resample(table.x.view(), &table.y)?;
    table.write_resampled(&args.output, out.x.view(), &out.y, &out.origin)?;
    if let Some(dir) = &args.save_models {
        let saved = SavedModels {
            label: table.label_name().to_string(),
            features: table.feature_names(),
            models: out.models.clone(),
        };
        saved.save(dir)?;
    }
    let engine = device.name();
    eprintln!(
        "{} rows in, {} rows out ({} synthetic) in {:.2} s on {engine}",
        table.y.len(),
        out.y.len(),
        out.synthetic_count(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn demo(args: DemoArgs) -> Result<(), Error> {
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
    let smrt = balancer(None, args.seed, args.epochs, Device::new(args.backend)?)?;
    let started = Instant::now();
    let out = smrt.fit_resample(x.view(), &y)?;
    let secs = started.elapsed().as_secs_f64();
    let mut before = std::collections::BTreeMap::new();
    for l in &y {
        *before.entry(l).or_insert(0usize) += 1;
    }
    let after = out.class_counts();
    println!("digit  before  after");
    for (label, n) in &before {
        println!("{label:>5}  {n:>6}  {:>5}", after[*label]);
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
        smrt.device()?.name(),
    );
    Ok(())
}

fn info() -> Result<(), Error> {
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
