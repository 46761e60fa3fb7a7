//! `smrt balance`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use smrt::models::SavedModels;
use smrt::shard::Shard;
use smrt::table::Table;
use smrt::{
    Backend, Balancer, Device, Error, RandomOverSampler, RandomUnderSampler, Sampling, Smote,
};

use super::labels::Class;
use super::progress::{summary, Progress};
use super::settings::{Method, Settings};
use super::{count, delimiter, same_file, ColumnTypes};

#[derive(clap::Args)]
pub struct BalanceArgs {
    /// CSV file with a header row, or a `.npy` array.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the balanced table (never the input file): CSV, or a `.npy` array when it
    /// ends in `.npy`.
    #[arg(long)]
    pub output: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// Field delimiter of the CSV files (default `,`).
    #[arg(long)]
    pub delimiter: Option<char>,
    #[command(flatten)]
    pub types: ColumnTypes,
    /// A TOML file with settings named as the flags (`method = "smote"`, `epochs = 200`,
    /// `hidden = [64, 32]`); flags given on the command line win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Save the models trained (smrt) into this directory, for `generate` or a later `--models`.
    #[arg(long)]
    pub save_models: Option<PathBuf>,
    /// Reuse the models saved in this directory (smrt); classes without one are trained.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Add a column NAME holding 1 for synthetic rows and 0 for input rows.
    #[arg(long, value_name = "NAME")]
    pub mark_synthetic: Option<String>,
    /// Write, for each synthetic row, the input row it was drawn from (where there is one) to
    /// this CSV file: columns output_row, source_row (0-based data rows, header excluded).
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// Also write a report of the synthetic rows into this directory (report.txt, report.json
    /// and a picture per class, as `smrt report` makes them).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Random under-sampling decided row by row from this column's text (a unique, stable row
    /// key): a row is kept when the seeded hash of its key falls below its class's keep rate,
    /// so pieces of one table decide alone what the whole would (counts kept in expectation).
    #[arg(long, value_name = "COLUMN")]
    pub row_key: Option<String>,
    /// With --row-key: the whole table's class counts (`CLASS=COUNT,...`) the keep rates are
    /// computed from, for a file that is one piece of a larger table (default: this file's).
    #[arg(long, value_name = "CLASS=COUNT,...", requires = "row_key")]
    pub class_counts: Option<String>,
    /// Write only the synthetic rows (with the header), for a job that appends them to the
    /// input itself.
    #[arg(long)]
    pub synthetic_only: bool,
    /// With --synthetic-only: write only the K-th of S contiguous slices of the synthetic rows
    /// (for example `2/8`), computing only those (a shard fits only the classes it draws);
    /// shard 1 writes the header. The S CSV files concatenated in order are, byte for byte,
    /// the --synthetic-only file of one run.
    #[arg(long, requires = "synthetic_only")]
    pub shard: Option<Shard>,
    /// No progress or summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also print the settings in effect (after --config) on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub settings: Settings,
}

pub fn balance(args: BalanceArgs) -> Result<(), Error> {
    if same_file(&args.input, &args.output) {
        return Err(Error::InvalidConfig {
            name: "output",
            reason: "is the input file; the input is never overwritten".into(),
        });
    }
    // A mistyped folder is an error now, not after the work.
    for file in std::iter::once(&args.output).chain(&args.provenance) {
        smrt::table::output_folder(file)?;
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
    if args.synthetic_only && method == Method::RandomUnder {
        return Err(Error::config(
            "synthetic_only",
            "random under-sampling makes no synthetic rows",
        ));
    }
    if args.row_key.is_some() && method != Method::RandomUnder {
        return Err(Error::config(
            "row_key",
            "decides random under-sampling; use it with --method random-under",
        ));
    }
    if args.shard.is_some() && smrt::table::is_npy(&args.output) {
        return Err(Error::config(
            "shard",
            "shards are CSV pieces of one file; a .npy file cannot be cut",
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
    let mut saved = args.models.as_deref().map(SavedModels::load).transpose()?;
    // Columns the models took as categories are read as categories again.
    let mut hints = args.types.hints();
    if let Some(m) = &saved {
        let known = m
            .categories
            .keys()
            .filter(|c| !hints.categorical.contains(c));
        hints.categorical.extend(known.cloned().collect::<Vec<_>>());
    }
    let mut table = Table::read_typed(&args.input, args.label.as_deref(), delim, &hints)?;
    if let (Some(m), Some(dir)) = (&saved, &args.models) {
        m.check_columns(dir, table.label_name(), &table.feature_names())?;
        table.recode(&m.categories)?;
    }
    if let Some(name) = &args.mark_synthetic {
        if table.header.contains(name) {
            return Err(Error::config(
                "mark_synthetic",
                format!("the input already has a column {name:?}"),
            ));
        }
    }
    // Saved models keep the sampling settings they were fitted with; flags given now win.
    let sampling = s.sampling_over(
        saved
            .as_ref()
            .map_or_else(Sampling::default, |m| m.sampling),
    );
    let epochs = s.epochs.unwrap_or(smrt::VaeConfig::default().epochs);
    let progress = Arc::new(Progress::new(args.quiet, epochs, count(&table.y)));
    // From here on the labels are codes; the names are kept once.
    let y = super::labels::intern(&std::mem::take(&mut table.y));
    let strategy = super::labels::strategy(strategy)?;
    let keyed_strategy = strategy.clone();
    let mut class_counts = BTreeMap::new();
    for c in &y {
        *class_counts.entry(*c).or_insert(0usize) += 1;
    }
    let synthetic_total: usize = match method {
        Method::RandomUnder => 0,
        _ => strategy.samples_to_add(&class_counts)?.values().sum(),
    };
    let device = match method {
        Method::Smrt | Method::Smote => super::device(s.backend(), args.quiet)?,
        Method::RandomOver | Method::RandomUnder => Device::Cpu,
    };
    let sampler: Box<dyn Balancer<Class>> = match method {
        Method::Smrt => {
            let bars = Arc::clone(&progress);
            let mut b = s.smrt_builder(strategy).device(device.clone()).on_epoch(
                move |class: &Class, epoch, stats| bars.epoch(class.name(), epoch, stats),
            );
            if let Some(saved) = saved.take() {
                // Models of classes this table lacks are not needed.
                for (name, vae) in saved.models {
                    if let Some(class) = Class::find(&name) {
                        b = b.prefit(class, vae);
                    }
                }
            }
            b = b.sampling(sampling);
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
    let levels = table.levels();
    let categories = smrt::Categories {
        codes: table.codes.view(),
        levels: &levels,
    };
    let shard = args.shard.unwrap_or(Shard::ALL);
    let out = match (&args.row_key, args.synthetic_only) {
        (Some(key), _) => {
            whole_table_counts(args.class_counts.as_deref(), &class_counts).and_then(|counts| {
                keyed_under_sample(&table, key, &y, &keyed_strategy, &counts, s.seed())
            })
        }
        (None, true) => sampler.fit_synthetic(table.x.view(), categories, &y, shard),
        (None, false) => sampler.fit_resample_mixed(table.x.view(), categories, &y),
    };
    progress.finish();
    let out = out?;
    let seconds = started.elapsed().as_secs_f64();
    // Computed before any file is written: a report that cannot be made leaves no output.
    let report = match (&args.report, args.synthetic_only) {
        (None, _) => None,
        (Some(_), false) => Some(super::report::of_table(
            &device,
            &table,
            out.x.view(),
            out.codes.view(),
            &out.y,
            &super::report::marks(&out.origin),
        )?),
        // The synthetic rows against the input's rows of their classes.
        (Some(_), true) => {
            let x = ndarray::concatenate(ndarray::Axis(0), &[table.x.view(), out.x.view()])
                .expect("the same columns");
            let codes =
                ndarray::concatenate(ndarray::Axis(0), &[table.codes.view(), out.codes.view()])
                    .expect("the same columns");
            let labels: Vec<Class> = y.iter().chain(&out.y).cloned().collect();
            let mut marks = vec![false; y.len()];
            marks.resize(labels.len(), true);
            Some(super::report::of_table(
                &device,
                &table,
                x.view(),
                codes.view(),
                &labels,
                &marks,
            )?)
        }
    };
    // Provenance numbers rows of the whole output; a shard's rows start where the shards
    // before it end.
    let first_row = shard.range(synthetic_total).start;
    if let Some(path) = &args.provenance {
        if same_file(&args.input, path) || same_file(&args.output, path) {
            return Err(Error::config(
                "provenance",
                "is the input or the output file",
            ));
        }
        smrt::table::write_atomic(path, |w| {
            let mut csv = csv::Writer::from_writer(w);
            if shard.is_first() {
                csv.write_record(["output_row", "source_row"])?;
            }
            for (r, o) in out.origin.iter().enumerate() {
                if let smrt::Origin::Synthetic { source } = o {
                    let src = source.map_or(String::new(), |i| i.to_string());
                    csv.write_record([(first_row + r).to_string(), src])?;
                }
            }
            csv.flush()?;
            Ok(())
        })?;
    }
    let mark = args.mark_synthetic.as_deref();
    let (x, codes) = (out.x.view(), out.codes.view());
    match shard.is_first() {
        true => table.write_resampled(&args.output, x, codes, &out.y, &out.origin, mark)?,
        false => table.write_resampled_rows(&args.output, x, codes, &out.y, &out.origin, mark)?,
    }
    if let (Some(dir), Some(r)) = (&args.report, &report) {
        super::report::write_dir(r, dir)?;
        if !args.quiet {
            eprintln!("report in {}", dir.display());
        }
    }
    if let Some(dir) = &args.save_models {
        let saved = SavedModels {
            label: table.label_name().to_string(),
            features: table.feature_names(),
            categories: table.categories_by_name(),
            sampling,
            models: out
                .models
                .iter()
                .map(|(c, m)| (c.name().to_string(), m.clone()))
                .collect(),
        };
        saved.save(dir)?;
    }
    if !args.quiet && method != Method::RandomUnder {
        eprint!("{}", summary(&y, &out, &device.name()));
    }
    if !args.quiet {
        let (categorical, features) = (table.codes.ncols(), table.features.len());
        // SMRT models the numeric columns with two values as yes/no variables.
        let yes_no = match method {
            Method::Smrt => smrt::vae::two_valued_columns(table.x.view()).len(),
            _ => 0,
        };
        let columns = match (categorical, yes_no) {
            (0, 0) => String::new(),
            (c, 0) => format!(", {c} of {features} feature columns categorical"),
            (0, b) => format!(", {b} of {features} feature columns yes/no"),
            (c, b) => format!(", {c} of {features} feature columns categorical, {b} yes/no"),
        };
        eprintln!(
            "{} rows in, {} rows out ({} synthetic{columns}) in {seconds:.2} s on {}",
            y.len(),
            out.y.len(),
            out.synthetic_count(),
            device.name()
        );
    }
    Ok(())
}

/// The class counts keep rates are computed from: those `--class-counts` gives (every class of
/// the file must have one), else the file's own, `file`.
fn whole_table_counts(
    list: Option<&str>,
    file: &BTreeMap<Class, usize>,
) -> Result<BTreeMap<Class, usize>, Error> {
    let Some(list) = list else {
        return Ok(file.clone());
    };
    let mut counts = BTreeMap::new();
    for item in list.split(',') {
        let bad = || {
            Error::config(
                "class_counts",
                format!("{item:?} is not CLASS=COUNT (a class of the file, a whole number)"),
            )
        };
        let (name, n) = item.rsplit_once('=').ok_or_else(bad)?;
        let class = Class::find(name.trim()).ok_or_else(bad)?;
        counts.insert(class, n.trim().parse::<usize>().map_err(|_| bad())?);
    }
    if let Some(c) = file.keys().find(|c| !counts.contains_key(c)) {
        return Err(Error::config(
            "class_counts",
            format!("no count for class {:?}, which the file has", c.name()),
        ));
    }
    Ok(counts)
}

/// Random under-sampling by row key (`--row-key`): the keep rates from the strategy on the
/// whole table's class `counts`, each row kept or not by [`smrt::balance::keyed::keeps`] on its
/// key's text.
fn keyed_under_sample(
    table: &Table,
    key: &str,
    y: &[Class],
    strategy: &smrt::Strategy<Class>,
    counts: &BTreeMap<Class, usize>,
    seed: u64,
) -> Result<smrt::Resampled<Class>, Error> {
    use smrt::balance::keyed;

    let Some(column) = smrt::table::column_named(&table.header, key, "row_key")? else {
        return Err(Error::config(
            "row_key",
            format!("no column {key:?} (columns: {:?})", table.header),
        ));
    };
    let rates = keyed::keep_rates(strategy, counts)?;
    let mut kept = Vec::new();
    table.each_field(column, |row, field| {
        let rate = rates.get(&y[row]).copied().unwrap_or(1.0);
        if keyed::keeps(field.as_bytes(), seed, rate) {
            kept.push(row);
        }
        Ok(())
    })?;
    Ok(smrt::Resampled {
        x: table.x.select(ndarray::Axis(0), &kept),
        codes: table.codes.select(ndarray::Axis(0), &kept),
        y: kept.iter().map(|&i| y[i]).collect(),
        origin: kept.iter().map(|&i| smrt::Origin::Real(i)).collect(),
        models: Default::default(),
    })
}
