//! Resampled tables written atomically, input rows field for field as read.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::ArrayView2;

use super::{is_npy, Feature, Table, CHECK_ROWS};
use crate::error::{Error, Result};
use crate::origin::Origin;

impl Table {
    /// Writes a resampling of this table to `path` atomically (a temporary file in the same
    /// folder, renamed when complete): rows whose origin is [`Origin::Real`] are this table's
    /// records (field by field, as read); synthetic rows are formatted from `x` (numeric
    /// columns) and `codes` (categorical columns, written as their category's text) with their
    /// label from `y`. With `mark`, a last column of that name holds 1 for synthetic rows, else 0.
    pub fn write_resampled<L: AsRef<str>>(
        &self,
        path: &Path,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        y: &[L],
        origin: &[Origin],
        mark: Option<&str>,
    ) -> Result<()> {
        if is_npy(path) {
            if self.has_categories() {
                return Err(Error::config(
                    "output",
                    "a .npy file holds numbers only; write a table with categorical columns as CSV",
                ));
            }
            return self.write_npy(path, x, y, origin, mark.is_some());
        }
        self.write_csv(path, (x, codes), y, origin, mark, true)
    }

    /// [`Table::write_resampled`] to a CSV file without the header row: a later piece of a file
    /// whose first piece has it (`balance --shard`).
    pub fn write_resampled_rows<L: AsRef<str>>(
        &self,
        path: &Path,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        y: &[L],
        origin: &[Origin],
        mark: Option<&str>,
    ) -> Result<()> {
        self.write_csv(path, (x, codes), y, origin, mark, false)
    }

    /// The CSV writer of [`Table::write_resampled`], the header row only where `header`.
    fn write_csv<L: AsRef<str>>(
        &self,
        path: &Path,
        (x, codes): (ArrayView2<'_, f32>, ArrayView2<'_, u32>),
        y: &[L],
        origin: &[Origin],
        mark: Option<&str>,
        header: bool,
    ) -> Result<()> {
        let mut records = self.records()?;
        write_atomic(path, |w| {
            let mut out = csv::WriterBuilder::new()
                .delimiter(self.delimiter)
                .from_writer(w);
            let mut fields: Vec<String> = self.header.clone();
            fields.extend(mark.map(str::to_string));
            if header {
                out.write_record(&fields)?;
            }
            for (r, (label, o)) in y.iter().zip(origin).enumerate() {
                if r % CHECK_ROWS == 0 {
                    crate::interrupt::check()?;
                }
                fields.clear();
                match *o {
                    Origin::Real(i) => fields.extend(records.get(i)?.iter().map(str::to_string)),
                    Origin::Synthetic { .. } => {
                        let (mut num, mut cat) = (x.row(r).into_iter(), codes.row(r).into_iter());
                        for f in &self.features {
                            fields.push(match f {
                                Feature::Numeric => num.next().expect("a value").to_string(),
                                Feature::Categorical { categories } => {
                                    categories[*cat.next().expect("a code") as usize].clone()
                                }
                            });
                        }
                        fields.insert(self.label_col, label.as_ref().to_string());
                    }
                }
                if mark.is_some() {
                    fields.push(if o.is_synthetic() { "1" } else { "0" }.to_string());
                }
                out.write_record(&fields)?;
            }
            out.flush()?;
            Ok(())
        })
    }
}

/// The folder a file written to `path` goes in, or an error naming it when there is no such
/// folder: a command checks its outputs with it before the work, not after.
pub fn output_folder(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (kind, reason) = match (dir.exists(), dir.is_dir()) {
        (_, true) => return Ok(dir),
        (true, false) => (std::io::ErrorKind::NotADirectory, "is not a directory"),
        (false, _) => (std::io::ErrorKind::NotFound, "does not exist"),
    };
    Err(Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(kind, format!("the folder {} {reason}", dir.display())),
    })
}

/// Runs `fill` on a temporary file beside `path`, then renames it to `path`. On any error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::result::Result<(), Box<dyn std::error::Error>>,
) -> Result<()> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = output_folder(path)?;
    let mut builder = tempfile::Builder::new();
    // A finished file gets the usual permissions (0666 less the umask), not a temporary's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    // The kind alone: tempfile's own message names its random file, not the output asked for.
    let mut tmp = builder
        .tempfile_in(&dir)
        .map_err(|e| io(std::io::Error::from(e.kind())))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        // smrt's own errors (a requested stop among them) come back as they are.
        fill(&mut w).map_err(|e| match e.downcast::<Error>() {
            Ok(own) => *own,
            Err(e) => io(std::io::Error::other(e.to_string())),
        })?;
        w.flush().map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
