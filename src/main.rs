//! The `smrt` command: balance CSV files from the shell.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
mod cli;

use std::sync::Arc;

use cli::progress::{summary, Progress};
use cli::settings::{Method, Settings};
use smrt::engine::{adapters, Gpu};
use smrt::models::SavedModels;
use smrt::table::Table;
use smrt::{Backend, Balancer, Device, Error, RandomOverSampler, RandomUnderSampler, Smote, Smrt};

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
    /// Measure each engine: matrix products (GFLOP/s), training and generation (rows/s),
    /// SMOTE and SMRT (synthetic rows/s). Progress on stderr, the table on stdout.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Engines: auto (the CPU, and a hardware GPU if there is one), gpu (any adapter) or cpu.
    #[arg(long, default_value = "auto")]
    backend: Backend,
    /// Workloads ten times smaller (a quick look).
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct FitArgs {
    /// CSV file with a header row.
    #[arg(long)]
    input: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long)]
    label: Option<String>,
    /// Field delimiter of the CSV file (default `,`).
    #[arg(long)]
    delimiter: Option<char>,
    /// Directory for the models (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// A class to model (repeatable; default: the classes the strategy grows).
    #[arg(long = "class")]
    classes: Vec<String>,
    /// A TOML file with settings named as the flags (`epochs = 200`, `hidden = [64, 32]`);
    /// flags given on the command line win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// No summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    settings: Settings,
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
    /// Field delimiter of the CSV files (default `,`).
    #[arg(long)]
    delimiter: Option<char>,
    /// A TOML file with settings named as the flags (`method = "smote"`, `epochs = 200`,
    /// `hidden = [64, 32]`); flags given on the command line win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Save the models trained (smrt) into this directory, for `generate` or a later `--models`.
    #[arg(long)]
    save_models: Option<PathBuf>,
    /// Reuse the models saved in this directory (smrt); classes without one are trained.
    #[arg(long)]
    models: Option<PathBuf>,
    /// Add a column NAME holding 1 for synthetic rows and 0 for input rows.
    #[arg(long, value_name = "NAME")]
    mark_synthetic: Option<String>,
    /// Write, for each synthetic row, the input row it was drawn from (where there is one) to
    /// this CSV file: columns output_row, source_row (0-based data rows, header excluded).
    #[arg(long, value_name = "FILE")]
    provenance: Option<PathBuf>,
    /// No summary on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Also print the settings in effect (after --config) on stderr.
    #[arg(long, short)]
    verbose: bool,
    #[command(flatten)]
    settings: Settings,
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
    /// Write `digits.png` here: a row of real rare digits, one of SMOTE's, one of SMRT's.
    #[arg(long)]
    out: Option<PathBuf>,
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
        Command::Bench(args) => bench(args),
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

fn balancer(seed: u64, epochs: Option<usize>, device: Device) -> Result<Smrt<String>, Error> {
    let mut b = Smrt::builder().seed(seed).device(device);
    if let Some(n) = epochs {
        b = b.epochs(n);
    }
    b.build()
}

fn fit(args: FitArgs) -> Result<(), Error> {
    let settings = args.settings.with_config(args.config.as_deref())?;
    if settings.method() != Method::Smrt {
        return Err(Error::config(
            "method",
            "fit trains SMRT models; --method does not apply",
        ));
    }
    settings.check_method()?;
    let strategy = settings.strategy()?;
    let table = Table::read(
        &args.input,
        args.label.as_deref(),
        delimiter(args.delimiter)?,
    )?;
    let epochs = settings.epochs.unwrap_or(smrt::VaeConfig::default().epochs);
    let progress = Arc::new(Progress::new(args.quiet, epochs, count(&table.y)));
    let bars = Arc::clone(&progress);
    let smrt = settings
        .smrt_builder(strategy)
        .on_epoch(move |class, epoch, stats| bars.epoch(class, epoch, stats))
        .build()?;
    let started = Instant::now();
    let classes = (!args.classes.is_empty()).then_some(args.classes.as_slice());
    let models = smrt.fit_models(table.x.view(), &table.y, classes);
    progress.finish();
    let models = models?;
    let saved = SavedModels {
        label: table.label_name().to_string(),
        features: table.feature_names(),
        models,
    };
    saved.save(&args.out)?;
    if !args.quiet {
        eprintln!(
            "{} model(s) saved to {} in {:.2} s on {}",
            saved.models.len(),
            args.out.display(),
            started.elapsed().as_secs_f64(),
            smrt.device()?.name()
        );
    }
    Ok(())
}

/// The CSV delimiter byte of `--delimiter`.
fn delimiter(c: Option<char>) -> Result<u8, Error> {
    match c {
        None => Ok(b','),
        Some(c) if c.is_ascii() && c != '"' && c != '\n' && c != '\r' => Ok(c as u8),
        Some(c) => Err(Error::config(
            "delimiter",
            format!("{c:?} cannot separate fields (one ASCII character other than a quote or line break)"),
        )),
    }
}

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
    let s = args.settings.with_config(args.config.as_deref())?;
    s.check_method()?;
    if args.verbose {
        eprintln!("{s:#?}");
    }
    let method = s.method();
    if (args.models.is_some() || args.save_models.is_some()) && method != Method::Smrt {
        return Err(Error::config(
            "models",
            format!("saved models are for --method smrt, not {method:?}"),
        ));
    }
    let strategy = s.strategy()?;
    if method == Method::Smrt {
        // Settings are checked before any file is read.
        s.smrt_builder(strategy.clone())
            .backend(Backend::Cpu)
            .build()?;
    }
    let delim = delimiter(args.delimiter)?;
    let table = Table::read(&args.input, args.label.as_deref(), delim)?;
    if let Some(name) = &args.mark_synthetic {
        if table.header.contains(name) {
            return Err(Error::config(
                "mark_synthetic",
                format!("the input already has a column {name:?}"),
            ));
        }
    }
    let epochs = s.epochs.unwrap_or(smrt::VaeConfig::default().epochs);
    let progress = Arc::new(Progress::new(args.quiet, epochs, count(&table.y)));
    let device = match method {
        Method::Smrt | Method::Smote => Device::new(s.backend())?,
        Method::RandomOver | Method::RandomUnder => Device::Cpu,
    };
    let sampler: Box<dyn Balancer<String>> = match method {
        Method::Smrt => {
            let bars = Arc::clone(&progress);
            let mut b = s
                .smrt_builder(strategy)
                .device(device.clone())
                .on_epoch(move |class, epoch, stats| bars.epoch(class, epoch, stats));
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
                .k_neighbors(s.k_neighbors.unwrap_or(5))
                .seed(s.seed())
                .device(device.clone()),
        ),
        Method::RandomOver => {
            let mut r = RandomOverSampler::new().strategy(strategy).seed(s.seed());
            if let Some(v) = s.shrinkage {
                r = r.shrinkage(v);
            }
            Box::new(r)
        }
        Method::RandomUnder => {
            Box::new(RandomUnderSampler::new().strategy(strategy).seed(s.seed()))
        }
    };
    let started = Instant::now();
    let out = sampler.fit_resample(table.x.view(), &table.y);
    progress.finish();
    let out = out?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &args.provenance {
        if same_file(&args.input, path) || same_file(&args.output, path) {
            return Err(Error::config(
                "provenance",
                "is the input or the output file",
            ));
        }
        smrt::table::write_atomic(path, |w| {
            let mut csv = csv::Writer::from_writer(w);
            csv.write_record(["output_row", "source_row"])?;
            for (r, o) in out.origin.iter().enumerate() {
                if let smrt::Origin::Synthetic { source } = o {
                    let src = source.map_or(String::new(), |i| i.to_string());
                    csv.write_record([r.to_string(), src])?;
                }
            }
            csv.flush()?;
            Ok(())
        })?;
    }
    table.write_resampled(
        &args.output,
        out.x.view(),
        &out.y,
        &out.origin,
        args.mark_synthetic.as_deref(),
    )?;
    if let Some(dir) = &args.save_models {
        let saved = SavedModels {
            label: table.label_name().to_string(),
            features: table.feature_names(),
            models: out.models.clone(),
        };
        saved.save(dir)?;
    }
    if !args.quiet && method != Method::RandomUnder {
        eprint!("{}", summary(&table.y, &out, &device.name()));
    }
    if !args.quiet {
        eprintln!(
            "{} rows in, {} rows out ({} synthetic) in {seconds:.2} s on {}",
            table.y.len(),
            out.y.len(),
            out.synthetic_count(),
            device.name()
        );
    }
    Ok(())
}

fn count(labels: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut c = std::collections::BTreeMap::new();
    for l in labels {
        *c.entry(l.clone()).or_insert(0) += 1;
    }
    c
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
    let device = Device::new(args.backend)?;
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
        cli::picture::digit_grid(
            &path,
            &[real.view(), smote_rows.view(), smrt_rows.view()],
            12,
        )?;
        println!(
            "{}: real {d}s (top), SMOTE's (middle), SMRT's (bottom)",
            path.display(),
            d = args.digit
        );
    }
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

fn bench(args: BenchArgs) -> Result<(), Error> {
    let figures = cli::bench::run(args.backend, args.quick)?;
    print!("{}", cli::bench::table(&figures));
    if let Some(path) = &args.json {
        cli::bench::write_json(path, &figures)?;
    }
    Ok(())
}
