//! `smrt fit` and `smrt generate`: models trained once, drawn from later.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array2, ArrayView1, Axis};
use smrt::models::SavedModels;
use smrt::shard::Shard;
use smrt::table::{Table, TypeHints};
use smrt::vae::Drawer;
use smrt::{Backend, Categories, Error, Generation};

use super::progress::Progress;
use super::settings::{kebab, kebab_name, sampling_over, Method, Settings};
use super::{count, delimiter, same_file, ColumnTypes};

/// `fit` trains SMRT only: the other resamplers' flags, and the output's, stay out of its help
/// (and are refused if given).
#[derive(clap::Args)]
#[command(
    mut_arg("method", |a| a.hide(true)),
    mut_arg("k_neighbors", |a| a.hide(true)),
    mut_arg("shrinkage", |a| a.hide(true)),
    mut_arg("shuffle", |a| a.hide(true))
)]
pub struct FitArgs {
    /// CSV file with a header row, or a `.npy` array.
    #[arg(long)]
    pub input: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// Field delimiter of the CSV file (default `,`).
    #[arg(long)]
    pub delimiter: Option<char>,
    #[command(flatten)]
    pub types: ColumnTypes,
    /// Directory for the models (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// A class to model (repeatable; default: the classes the strategy grows).
    #[arg(long = "class")]
    pub classes: Vec<String>,
    /// A TOML file with settings named as the flags (`epochs = 200`, `hidden = [64, 32]`);
    /// flags given on the command line win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// No progress or summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Directory written by `smrt fit` or `balance --save-models`.
    #[arg(long)]
    pub models: PathBuf,
    /// The class to draw rows of.
    #[arg(long)]
    pub class: String,
    /// Number of rows.
    #[arg(long)]
    pub n: usize,
    /// The file to write: CSV (header: the training data's columns, the label last), or a
    /// float64 `.npy` array in the same column order when it ends in `.npy`.
    #[arg(long)]
    pub output: PathBuf,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write only the K-th of S contiguous slices of the `--n` rows (for example `2/8`); shard 1
    /// writes the header. The S files concatenated in order are, byte for byte, the file one
    /// run without `--shard` writes.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Where to compute: auto, gpu or cpu (as for `balance`).
    #[arg(long, default_value = "auto")]
    pub backend: Backend,
    /// Nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Where rows are drawn from: auto, prior, posterior, residual, prior-residual, interpolate
    /// (default: the mode the models were fitted with). Every mode but prior needs the class's
    /// real rows (`--input`); auto needs them where the class's model chose prior-residual.
    #[arg(long, value_parser = kebab::<Generation>)]
    pub generation: Option<Generation>,
    /// Scale of the latent noise (default: as fitted).
    #[arg(long, allow_hyphen_values = true)]
    pub temperature: Option<f32>,
    /// Latent neighbours per row for interpolate generation (default: as fitted).
    #[arg(long)]
    pub neighbors: Option<usize>,
    /// Limit generated values to the class's range (default: as fitted).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub clip: Option<bool>,
    /// CSV file with the real rows the draws start from (the data the models were fitted on);
    /// read only by the modes that need it.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Name of the label column of `--input` (default: the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// Field delimiter of `--input` (default `,`).
    #[arg(long)]
    pub delimiter: Option<char>,
}

pub fn fit(args: FitArgs) -> Result<(), Error> {
    let settings = args.settings.with_config(args.config.as_deref())?;
    if settings.method() != Method::Smrt {
        return Err(Error::config(
            "method",
            "fit trains SMRT models; --method does not apply",
        ));
    }
    if settings.shuffle.is_some() {
        return Err(Error::config(
            "shuffle",
            "orders the rows balance writes; fit writes no rows",
        ));
    }
    settings.check_method()?;
    let strategy = settings.strategy()?;
    // The sample is chosen as the file is read: memory for `--sample` rows per class.
    let sample = smrt::table::Sample {
        rows: settings.sample(),
        seed: settings.seed(),
    };
    let table = Table::read_sample(
        &args.input,
        args.label.as_deref(),
        delimiter(args.delimiter)?,
        &args.types.hints(),
        sample,
    )?;
    // The classes to model follow from the file's class counts, not the sample's.
    let grown: Vec<String>;
    let classes = match args.classes.is_empty() {
        false => args.classes.as_slice(),
        true => {
            grown = strategy
                .samples_to_add(&table.rows_read())?
                .into_keys()
                .collect();
            grown.as_slice()
        }
    };
    let epochs = settings.epochs.unwrap_or(smrt::VaeConfig::default().epochs);
    let progress = Arc::new(Progress::new(args.quiet, epochs, count(&table.y)));
    let bars = Arc::clone(&progress);
    let device = super::device(settings.backend(), args.quiet)?;
    let smrt = settings
        .smrt_builder(strategy)
        .device(device)
        .on_epoch(move |class, epoch, stats| bars.epoch(class, epoch, stats))
        .build()?;
    let started = Instant::now();
    let levels = table.levels();
    let categories = Categories {
        codes: table.codes.view(),
        levels: &levels,
    };
    let models = smrt.fit_models_mixed(table.x.view(), Some(categories), &table.y, Some(classes));
    progress.finish();
    let models = models?;
    let saved = SavedModels {
        label: table.label_name().to_string(),
        features: table.feature_names(),
        categories: table.categories_by_name(),
        sampling: *smrt.sampling(),
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

/// Rows per piece of `generate`: the memory it holds whatever N is.
const GENERATE_PIECE: usize = 65_536;

pub fn generate(args: GenerateArgs) -> Result<(), Error> {
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
    if args.shard.is_some() && smrt::table::is_npy(&args.output) {
        return Err(Error::config(
            "shard",
            "shards are CSV pieces of one file; a .npy file cannot be cut",
        ));
    }
    if same_file(&args.models.join(smrt::models::INDEX), &args.output) {
        return Err(Error::InvalidConfig {
            name: "output",
            reason: "is the model index".into(),
        });
    }
    let sampling = sampling_over(
        saved.sampling,
        args.generation,
        args.temperature,
        args.neighbors,
        args.clip,
    );
    sampling.validate()?;
    // `auto` draws as each model chose when it was fitted.
    let generation = vae.resolve_generation(&sampling);
    let (real, real_codes) = class_rows(&args, &saved, generation)?;
    let device = super::device(args.backend, args.quiet)?;
    let started = Instant::now();
    let mut header = saved.features.clone();
    header.push(saved.label.clone());
    // The class's rows are prepared once; rows are drawn and written a piece at a time.
    let drawer = vae.drawer(
        &device,
        real.view(),
        real_codes.view(),
        args.seed,
        &sampling,
    )?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    let rows = shard.range(args.n);
    if smrt::table::is_npy(&args.output) {
        write_npy_rows(&args, &saved, &drawer, rows.clone())?;
    } else {
        smrt::table::write_atomic(&args.output, |w| {
            let mut out = csv::Writer::from_writer(w);
            if shard.is_first() {
                out.write_record(&header)?;
            }
            let mut fields: Vec<String> = Vec::with_capacity(header.len());
            each_row(&drawer, rows.clone(), |row, codes| {
                fields.clear();
                let (mut num, mut cat) = (row.iter(), codes.iter());
                for name in &saved.features {
                    fields.push(match saved.categories.get(name) {
                        Some(dictionary) => {
                            dictionary[*cat.next().expect("a code") as usize].clone()
                        }
                        None => num.next().expect("a value").to_string(),
                    });
                }
                fields.push(args.class.clone());
                out.write_record(&fields)
                    .map_err(Box::<dyn std::error::Error>::from)
            })?;
            out.flush()?;
            Ok(())
        })?;
    }
    if !args.quiet {
        let of = match args.shard {
            Some(s) => format!(" (shard {}/{} of {})", s.index(), s.count(), args.n),
            None => String::new(),
        };
        eprintln!(
            "{}{of} rows of class {} ({} generation) in {:.2} s on {}",
            rows.len(),
            args.class,
            kebab_name(&generation),
            started.elapsed().as_secs_f64(),
            device.name()
        );
    }
    Ok(())
}

/// Draws rows `rows` of `drawer` a piece at a time, handing each row (numeric values, category
/// codes) to `write`.
fn each_row<E: From<Error>>(
    drawer: &Drawer<'_>,
    rows: Range<usize>,
    mut write: impl FnMut(ArrayView1<'_, f32>, ArrayView1<'_, u32>) -> Result<(), E>,
) -> Result<(), E> {
    for start in rows.clone().step_by(GENERATE_PIECE) {
        smrt::interrupt::check()?;
        let end = (start + GENERATE_PIECE).min(rows.end);
        let (values, codes, _) = drawer.rows(start..end)?;
        for (row, codes) in values.rows().into_iter().zip(codes.rows()) {
            write(row, codes)?;
        }
    }
    Ok(())
}

/// `generate` into a float64 `.npy` array: the models' columns in order, then the label, so
/// the class and any categorical values must be numbers.
fn write_npy_rows(
    args: &GenerateArgs,
    saved: &SavedModels,
    drawer: &Drawer<'_>,
    rows: Range<usize>,
) -> Result<(), Error> {
    use ndarray_npy::WriteNpyExt;
    let number = |what: &str, text: &str| {
        text.trim().parse::<f64>().map_err(|_| {
            Error::config(
                "output",
                format!("a .npy file holds numbers; {what} {text:?} is not one"),
            )
        })
    };
    let label = number("the class", &args.class)?;
    // Each categorical column's values as numbers, checked before anything is drawn.
    let categories: Vec<Option<Vec<f64>>> = (saved.features.iter())
        .map(|name| {
            saved.categories.get(name).map(|dictionary| {
                (dictionary.iter())
                    .map(|v| number(&format!("the {name} category"), v))
                    .collect::<Result<Vec<f64>, Error>>()
            })
        })
        .map(Option::transpose)
        .collect::<Result<_, Error>>()?;
    let cols = saved.features.len() + 1;
    let mut out = Array2::<f64>::zeros((rows.len(), cols));
    let mut next = out.rows_mut().into_iter();
    // A model whose draws do not fill its columns (a file edited by hand) is an error, not a panic.
    let mismatch = || Error::Model {
        path: args.models.clone(),
        reason: "the model's draws do not match its columns and categories".into(),
    };
    each_row(drawer, rows, |values, codes| {
        let mut row = next.next().ok_or_else(mismatch)?;
        let (mut num, mut cat) = (values.iter(), codes.iter());
        for (c, dictionary) in categories.iter().enumerate() {
            row[c] = match dictionary {
                Some(d) => *cat
                    .next()
                    .and_then(|&code| d.get(code as usize))
                    .ok_or_else(mismatch)?,
                None => f64::from(*num.next().ok_or_else(mismatch)?),
            };
        }
        row[cols - 1] = label;
        Ok::<(), Error>(())
    })?;
    smrt::table::write_atomic(&args.output, |w| Ok(out.write_npy(w)?))
}

/// The rows of the class in `--input` (numeric columns, and codes of the categorical ones in
/// the models' dictionaries) when `generation` starts from real rows, else none.
fn class_rows(
    args: &GenerateArgs,
    saved: &SavedModels,
    generation: Generation,
) -> Result<(Array2<f32>, Array2<u32>), Error> {
    if generation == Generation::Prior {
        let categorical = saved.categories.len();
        return Ok((
            Array2::zeros((0, saved.features.len() - categorical)),
            Array2::zeros((0, categorical)),
        ));
    }
    let Some(input) = &args.input else {
        return Err(Error::config(
            "input",
            format!(
                "{} generation starts from real rows of the class: give the data the models were fitted on with --input",
                kebab_name(&generation)
            ),
        ));
    };
    // Typed as the models saw the columns.
    let hints = TypeHints {
        categorical: saved.categories.keys().cloned().collect(),
        numeric: Vec::new(),
    };
    let mut table = Table::read_typed(
        input,
        args.label.as_deref(),
        delimiter(args.delimiter)?,
        &hints,
    )?;
    saved.check_columns(&args.models, table.label_name(), &table.feature_names())?;
    table.recode(&saved.categories)?;
    let rows: Vec<usize> = (0..table.y.len())
        .filter(|&i| table.y[i] == args.class)
        .collect();
    if rows.is_empty() {
        return Err(Error::config(
            "input",
            format!("{} has no rows of class {:?}", input.display(), args.class),
        ));
    }
    Ok((
        table.x.select(Axis(0), &rows),
        table.codes.select(Axis(0), &rows),
    ))
}
