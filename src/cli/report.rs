//! `smrt report`, and the report `smrt balance --report` writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use smrt::report::{report, Columns, Report, Rows};
use smrt::table::{write_atomic, Feature, Table};
use smrt::{Backend, Categories, Device, Error, Origin};

use super::{delimiter, same_file, ColumnTypes};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The balanced table (CSV, or a `.npy` array), real and synthetic rows together.
    #[arg(long)]
    pub input: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long)]
    pub label: Option<String>,
    /// A column of --input that marks synthetic rows with 1 (or true, yes) and real rows with 0
    /// (false, no), as `balance --mark-synthetic NAME` writes it.
    #[arg(long, value_name = "NAME", group = "origin")]
    pub synthetic_column: Option<String>,
    /// The file `balance --provenance` wrote: its output_row column lists the synthetic rows.
    #[arg(long, value_name = "FILE", group = "origin")]
    pub provenance: Option<PathBuf>,
    /// The real rows, a CSV (or `.npy`) with the columns of --input: each of its rows marks one equal row of
    /// --input as real; the other rows are synthetic.
    #[arg(long, value_name = "FILE", group = "origin")]
    pub real: Option<PathBuf>,
    /// Draw one PNG per class into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Show every feature, not only the 12 with the largest KS statistic.
    #[arg(long)]
    pub full: bool,
    /// Nothing on stderr but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Field delimiter of the CSV files (default `,`).
    #[arg(long)]
    pub delimiter: Option<char>,
    /// Where the nearest neighbours are computed: auto (a hardware GPU if present, else the
    /// CPU), gpu or cpu.
    #[arg(long, value_parser = super::settings::kebab::<Backend>)]
    pub backend: Option<Backend>,
    #[command(flatten)]
    pub types: ColumnTypes,
}

pub fn run(args: ReportArgs) -> Result<(), Error> {
    let delim = delimiter(args.delimiter)?;
    if let Some(path) = &args.json {
        if same_file(&args.input, path) {
            return Err(Error::config("json", "is the input file"));
        }
    }
    let hints = args.types.hints();
    // `balance --mark-synthetic` appends the mark after the label: the label is then the
    // column before it, not the last one.
    let label = match (&args.label, &args.synthetic_column) {
        (None, Some(mark)) => label_before_mark(&args.input, delim, mark)?,
        _ => args.label.clone(),
    };
    let mut table = Table::read_typed(&args.input, label.as_deref(), delim, &hints)?;
    let synthetic = if let Some(name) = &args.synthetic_column {
        take_mark(&mut table, name)?
    } else if let Some(path) = &args.provenance {
        provenance_marks(path, table.y.len())?
    } else if let Some(path) = &args.real {
        let real = Table::read_typed(path, Some(table.label_name()), delim, &hints)?;
        real_marks(&table, &real, &args.input, path)?
    } else {
        return Err(Error::config(
            "report",
            "say which rows are synthetic: --synthetic-column NAME, --provenance FILE or --real FILE",
        ));
    };
    let device = super::device(args.backend.unwrap_or_default(), args.quiet)?;
    let r = of_table(
        &device,
        &table,
        table.x.view(),
        table.codes.view(),
        &table.y,
        &synthetic,
    )?;
    print!("{}", r.text(args.full));
    if let Some(path) = &args.json {
        write_json(&r, path)?;
    }
    if let Some(dir) = &args.out {
        let files = r.draw(dir)?;
        if !args.quiet {
            eprintln!("{} picture(s) in {}", files.len(), dir.display());
        }
    }
    Ok(())
}

/// The column before `mark` when `mark` is the last column of `path`'s header.
fn label_before_mark(path: &Path, delim: u8, mark: &str) -> Result<Option<String>, Error> {
    let header = csv::ReaderBuilder::new()
        .delimiter(delim)
        .from_path(path)
        .and_then(|mut r| r.headers().cloned())
        .map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    let names: Vec<&str> = header
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}'))
        .collect();
    Ok(match names.as_slice() {
        [.., label, last] if *last == mark => Some(label.to_string()),
        _ => None,
    })
}

/// The report of rows shaped as `table`'s columns.
pub fn of_table<L: smrt::Label + std::fmt::Display>(
    device: &Device,
    table: &Table,
    x: ndarray::ArrayView2<'_, f32>,
    codes: ndarray::ArrayView2<'_, u32>,
    y: &[L],
    synthetic: &[bool],
) -> Result<Report, Error> {
    let names = table.feature_names();
    let mut columns = Columns::default();
    for (name, f) in names.iter().zip(&table.features) {
        match f {
            Feature::Numeric => columns.numeric.push(name.clone()),
            Feature::Categorical { .. } => columns.categorical.push(name.clone()),
        }
    }
    let levels = table.levels();
    let rows = Rows {
        x: x.view(),
        categories: Categories {
            codes: codes.view(),
            levels: &levels,
        },
        y,
        synthetic,
    };
    report(device, &rows, &columns)
}

/// Writes the report of a balance run into `dir`: report.txt, report.json and a PNG per class.
pub fn write_dir(r: &Report, dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_atomic(&dir.join("report.txt"), |w| {
        w.write_all(r.text(true).as_bytes())?;
        Ok(())
    })?;
    write_json(r, &dir.join("report.json"))?;
    r.draw(dir)?;
    Ok(())
}

fn write_json(r: &Report, path: &Path) -> Result<(), Error> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, r)?;
        w.write_all(b"\n")?;
        Ok(())
    })
}

/// The synthetic marks of a balance run's rows.
pub fn marks(origin: &[Origin]) -> Vec<bool> {
    origin.iter().map(|o| o.is_synthetic()).collect()
}

/// Removes feature column `name` from `table` and reads it as marks: 1, true, yes (any case)
/// for synthetic rows; 0, false, no for real ones.
fn take_mark(table: &mut Table, name: &str) -> Result<Vec<bool>, Error> {
    let names = table.feature_names();
    let label = table.label_col;
    // The feature's place among the features: the label column is not one of them.
    let column = smrt::table::column_named(&table.header, name, "synthetic_column")?;
    let Some(f) = column
        .filter(|&c| c != label)
        .map(|c| c - usize::from(c > label))
    else {
        return Err(Error::config(
            "synthetic_column",
            format!(
                "{name:?} is not a feature column of the input (columns: {})",
                names.join(", ")
            ),
        ));
    };
    let bad = |row: usize, v: &str| {
        Error::config(
            "synthetic_column",
            format!("row {row}: {v:?} is not 1/0, true/false or yes/no"),
        )
    };
    let before =
        |kind: fn(&Feature) -> bool| table.features[..f].iter().filter(|g| kind(g)).count();
    let marks = match &table.features[f] {
        Feature::Numeric => {
            let j = before(|g| matches!(g, Feature::Numeric));
            let marks = table
                .x
                .column(j)
                .iter()
                .enumerate()
                .map(|(row, &v)| match v {
                    1.0 => Ok(true),
                    0.0 => Ok(false),
                    _ => Err(bad(row, &v.to_string())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            table.x = drop_column(&table.x, j);
            marks
        }
        Feature::Categorical { categories } => {
            let j = before(|g| matches!(g, Feature::Categorical { .. }));
            let marks = table
                .codes
                .column(j)
                .iter()
                .enumerate()
                .map(|(row, &c)| {
                    let v = &categories[c as usize];
                    match v.to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" => Ok(true),
                        "0" | "false" | "no" => Ok(false),
                        _ => Err(bad(row, v)),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            table.codes = drop_column(&table.codes, j);
            marks
        }
    };
    table.features.remove(f);
    let at = if f >= table.label_col { f + 1 } else { f };
    table.header.remove(at);
    if at < table.label_col {
        table.label_col -= 1;
    }
    Ok(marks)
}

fn drop_column<T: Clone>(a: &Array2<T>, j: usize) -> Array2<T> {
    let keep: Vec<usize> = (0..a.ncols()).filter(|&c| c != j).collect();
    a.select(Axis(1), &keep)
}

/// Marks from a provenance file: every row listed in its output_row column is synthetic.
fn provenance_marks(path: &Path, rows: usize) -> Result<Vec<bool>, Error> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| io(std::io::Error::other(e)))?;
    let headers = reader
        .headers()
        .map_err(|e| io(std::io::Error::other(e)))?
        .clone();
    let Some(col) = headers.iter().position(|h| h == "output_row") else {
        return Err(Error::config(
            "provenance",
            format!("{} has no output_row column", path.display()),
        ));
    };
    let mut marks = vec![false; rows];
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| io(std::io::Error::other(e)))?;
        let field = record.get(col).unwrap_or("");
        match field.trim().parse::<usize>() {
            Ok(r) if r < rows => marks[r] = true,
            _ => {
                return Err(Error::config(
                    "provenance",
                    format!(
                        "{} line {}: output_row {field:?} is not a row of the input (0 to {})",
                        path.display(),
                        line + 2,
                        rows.saturating_sub(1)
                    ),
                ))
            }
        }
    }
    Ok(marks)
}

/// Marks from a file of the real rows: each of its rows marks one equal row of `table` real.
fn real_marks(table: &Table, real: &Table, input: &Path, path: &Path) -> Result<Vec<bool>, Error> {
    if real.feature_names() != table.feature_names() {
        return Err(Error::config(
            "real",
            format!(
                "{} has columns {} but {} has {}",
                path.display(),
                real.feature_names().join(", "),
                input.display(),
                table.feature_names().join(", ")
            ),
        ));
    }
    // A row as its label, numeric bits (0.0 and -0.0 alike) and category names.
    let key = |t: &Table, r: usize| -> (String, Vec<u32>, Vec<String>) {
        let cats: Vec<String> = t
            .features
            .iter()
            .filter_map(|f| match f {
                Feature::Categorical { categories } => Some(categories),
                Feature::Numeric => None,
            })
            .zip(t.codes.row(r))
            .map(|(c, &code)| c[code as usize].clone())
            .collect();
        let nums = t.x.row(r).iter().map(|&v| (v + 0.0).to_bits()).collect();
        (t.y[r].clone(), nums, cats)
    };
    let mut remaining: HashMap<_, usize> = HashMap::new();
    for r in 0..real.y.len() {
        *remaining.entry(key(real, r)).or_insert(0) += 1;
    }
    let marks: Vec<bool> = (0..table.y.len())
        .map(|r| match remaining.get_mut(&key(table, r)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect();
    if marks.iter().all(|&m| m) {
        return Err(Error::config(
            "real",
            format!(
                "no row of {} is in {}: is it the file the table was balanced from?",
                input.display(),
                path.display()
            ),
        ));
    }
    Ok(marks)
}
