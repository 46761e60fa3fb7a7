//! Pieces of the `smrt` command that are more than argument plumbing, one file per command.

pub mod balance;
pub mod bench;
pub mod demo;
pub mod labels;
pub mod models;
pub mod picture;
pub mod progress;
pub mod report;
pub mod settings;

use std::collections::BTreeMap;
use std::path::Path;

use smrt::{Device, Error, Smrt};

/// The device `backend` names; where `auto` settles on the CPU engine, one line on stderr says
/// why, unless `quiet`.
pub fn device(backend: smrt::Backend, quiet: bool) -> Result<Device, Error> {
    let (device, why) = Device::explained(backend)?;
    if let (Some(why), false) = (why, quiet) {
        eprintln!(
            "smrt: {why}; computing on the CPU engine (--backend cpu says so, --quiet silences this)"
        );
    }
    Ok(device)
}

/// The command-line flag of a library setting named in an [`Error::InvalidConfig`]
/// (`k_neighbors` is `--k-neighbors`, `early_stopping.patience` is `--patience`).
pub fn flag_of(setting: &str) -> String {
    match setting {
        "fit_rows" => "--sample".into(),
        "targets" => "--strategy".into(),
        // `smrt report` itself: told which of its flags it lacks.
        "report" => "report".into(),
        // An environment variable (`SMRT_BACKEND`).
        _ if setting.chars().any(|c| c.is_ascii_uppercase()) => setting.into(),
        _ => {
            let field = setting.rsplit('.').next().unwrap_or(setting);
            format!("--{}", field.replace('_', "-"))
        }
    }
}

pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

pub fn balancer(seed: u64, epochs: Option<usize>, device: Device) -> Result<Smrt<String>, Error> {
    let mut b = Smrt::builder().seed(seed).device(device);
    if let Some(n) = epochs {
        b = b.epochs(n);
    }
    b.build()
}

/// The CSV delimiter byte of `--delimiter`.
pub fn delimiter(c: Option<char>) -> Result<u8, Error> {
    match c {
        None => Ok(b','),
        Some(c) if c.is_ascii() && c != '"' && c != '\n' && c != '\r' => Ok(c as u8),
        Some(c) => Err(Error::config(
            "delimiter",
            format!("{c:?} cannot separate fields (one ASCII character other than a quote or line break)"),
        )),
    }
}

pub fn count(labels: &[String]) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for l in labels {
        *c.entry(l.clone()).or_insert(0) += 1;
    }
    c
}

/// The flags that fix a column's type.
#[derive(Debug, Default, clap::Args)]
pub struct ColumnTypes {
    /// Columns to treat as categorical even if every value is a number (comma-separated).
    /// A column holding any text is categorical without it.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub categorical: Vec<String>,
    /// Columns that must hold numbers (comma-separated): a value that is not one is an error
    /// naming its line and column, instead of making the column categorical.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    pub numeric: Vec<String>,
}

impl ColumnTypes {
    /// The reader's hints.
    pub fn hints(&self) -> smrt::table::TypeHints {
        smrt::table::TypeHints {
            categorical: self.categorical.clone(),
            numeric: self.numeric.clone(),
        }
    }
}
