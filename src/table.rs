//! Labelled tables in CSV files: numeric feature columns plus one label column kept as text.
//!
//! Input rows are kept as read, so balanced output repeats them field for field; only synthetic rows
//! are formatted (shortest representation that reads back to the same `f32`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::origin::Origin;

/// A CSV table split into a feature matrix and a label column.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names in file order.
    pub header: Vec<String>,
    /// Position of the label column in `header`.
    pub label_col: usize,
    /// Features, one row per record, columns in file order without the label.
    pub x: Array2<f32>,
    /// Labels exactly as written.
    pub y: Vec<String>,
    records: Vec<csv::StringRecord>,
    delimiter: u8,
}

impl Table {
    /// Reads a CSV file with a header row; `label` names the label column (default: the last).
    pub fn read_csv(path: &Path, label: Option<&str>) -> Result<Table> {
        Table::read_csv_with(path, label, b',')
    }

    /// [`Table::read_csv`] with another field delimiter (written back the same way). A UTF-8
    /// byte-order mark and CRLF line ends are accepted.
    pub fn read_csv_with(path: &Path, label: Option<&str>, delimiter: u8) -> Result<Table> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Table::from_reader_with(file, path, label, delimiter)
    }

    /// Reads CSV from `reader`; `source` names it in error messages.
    pub fn from_reader<R: Read>(reader: R, source: &Path, label: Option<&str>) -> Result<Table> {
        Table::from_reader_with(reader, source, label, b',')
    }

    /// [`Table::from_reader`] with another field delimiter.
    pub fn from_reader_with<R: Read>(
        reader: R,
        source: &Path,
        label: Option<&str>,
        delimiter: u8,
    ) -> Result<Table> {
        let parse = |line: u64, reason: String| Error::Parse {
            path: source.to_path_buf(),
            line,
            reason,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .delimiter(delimiter)
            .from_reader(reader);
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_error(source, e))?
            .iter()
            .map(str::to_string)
            .collect();
        if header.is_empty() || header.iter().all(String::is_empty) {
            return Err(Error::EmptyInput("the file has no header row"));
        }
        if header.len() < 2 {
            return Err(parse(
                1,
                "need at least one feature column and a label column".into(),
            ));
        }
        let label_col = match label {
            None => header.len() - 1,
            Some(name) => header.iter().position(|h| h == name).ok_or_else(|| {
                Error::config(
                    "label",
                    format!(
                        "no column named {name:?}; columns are {}",
                        header.join(", ")
                    ),
                )
            })?,
        };
        let features = header.len() - 1;
        let mut values = Vec::new();
        let mut y = Vec::new();
        let mut records = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_error(source, e))?;
            let line = rec.position().map_or(0, |p| p.line());
            for (col, field) in rec.iter().enumerate() {
                if col == label_col {
                    y.push(field.to_string());
                    continue;
                }
                let v: f32 = field.trim().parse().map_err(|_| {
                    parse(
                        line,
                        format!("column {:?}: {field:?} is not a number", header[col]),
                    )
                })?;
                if !v.is_finite() {
                    return Err(parse(
                        line,
                        format!("column {:?}: {field:?} is not finite", header[col]),
                    ));
                }
                values.push(v);
            }
            records.push(rec);
        }
        if records.is_empty() {
            return Err(Error::EmptyInput("the file has a header but no rows"));
        }
        let x = Array2::from_shape_vec((records.len(), features), values)
            .expect("every record has the header's width");
        Ok(Table {
            header,
            label_col,
            x,
            y,
            records,
            delimiter,
        })
    }

    /// Reads a 2-D `.npy` array (`<f4` or `<f8`, C order). Columns are named by their index;
    /// `label` is the label column's index (default: the last). Labels are the label values
    /// written as numbers (`1.0` becomes `1`).
    pub fn read_npy(path: &Path, label: Option<&str>) -> Result<Table> {
        use ndarray_npy::ReadNpyExt;
        let open = || {
            std::fs::File::open(path).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        let bad = |reason: String| Error::Parse {
            path: path.to_path_buf(),
            line: 0,
            reason,
        };
        let data: Array2<f64> = match Array2::<f64>::read_npy(open()?) {
            Ok(a) => a,
            Err(_) => Array2::<f32>::read_npy(open()?)
                .map_err(|e| bad(format!("not a 2-D float32/float64 .npy array: {e}")))?
                .mapv(f64::from),
        };
        let (rows, cols) = data.dim();
        if cols < 2 {
            return Err(bad(
                "need at least one feature column and a label column".into()
            ));
        }
        if rows == 0 {
            return Err(Error::EmptyInput("the array has no rows"));
        }
        let header: Vec<String> = (0..cols).map(|c| c.to_string()).collect();
        let label_col = match label {
            None => cols - 1,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|&c| c < cols)
                .ok_or_else(|| {
                    Error::config(
                        "label",
                        format!("{l:?} is not a column index of a {cols}-column array"),
                    )
                })?,
        };
        let mut values = Vec::with_capacity(rows * (cols - 1));
        let mut y = Vec::with_capacity(rows);
        let mut records = Vec::with_capacity(rows);
        for (r, row) in data.rows().into_iter().enumerate() {
            let mut rec = csv::StringRecord::new();
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(Error::NonFinite {
                        row: r,
                        col: c,
                        value: v as f32,
                    });
                }
                rec.push_field(&v.to_string());
                if c == label_col {
                    y.push(v.to_string());
                } else {
                    values.push(v as f32);
                }
            }
            records.push(rec);
        }
        Ok(Table {
            header,
            label_col,
            x: Array2::from_shape_vec((rows, cols - 1), values).expect("rows x features"),
            y,
            records,
            delimiter: b',',
        })
    }

    /// Reads `.npy` files with [`Table::read_npy`] and anything else as CSV with `delimiter`.
    pub fn read(path: &Path, label: Option<&str>, delimiter: u8) -> Result<Table> {
        if is_npy(path) {
            Table::read_npy(path, label)
        } else {
            Table::read_csv_with(path, label, delimiter)
        }
    }

    /// The feature columns' names, in file order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.header.clone();
        names.remove(self.label_col);
        names
    }

    /// The label column's name.
    pub fn label_name(&self) -> &str {
        &self.header[self.label_col]
    }

    /// Writes a resampling of this table to `path` atomically (a temporary file in the same
    /// folder, renamed when complete): rows whose origin is [`Origin::Real`] are this table's
    /// records (field by field, as read); synthetic rows are formatted from `x` with their label
    /// from `y`. With `mark`, a last column of that name holds 1 for synthetic rows, else 0.
    pub fn write_resampled(
        &self,
        path: &Path,
        x: ArrayView2<'_, f32>,
        y: &[String],
        origin: &[Origin],
        mark: Option<&str>,
    ) -> Result<()> {
        if is_npy(path) {
            return self.write_npy(path, x, y, origin, mark.is_some());
        }
        write_atomic(path, |w| {
            let mut out = csv::WriterBuilder::new()
                .delimiter(self.delimiter)
                .from_writer(w);
            let mut fields: Vec<String> = self.header.clone();
            fields.extend(mark.map(str::to_string));
            out.write_record(&fields)?;
            for ((row, label), o) in x.rows().into_iter().zip(y).zip(origin) {
                fields.clear();
                match *o {
                    Origin::Real(i) => fields.extend(self.records[i].iter().map(str::to_string)),
                    Origin::Synthetic { .. } => {
                        fields.extend(row.iter().map(|v| v.to_string()));
                        fields.insert(self.label_col, label.clone());
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

/// Whether `path` names a `.npy` file.
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

impl Table {
    /// The resampled rows as a float64 `.npy` array in this table's column order (plus the
    /// 0/1 mark column last when asked): input rows keep their values exactly.
    fn write_npy(
        &self,
        path: &Path,
        x: ArrayView2<'_, f32>,
        y: &[String],
        origin: &[Origin],
        mark: bool,
    ) -> Result<()> {
        use ndarray_npy::WriteNpyExt;
        let cols = self.header.len() + usize::from(mark);
        let mut out = Array2::<f64>::zeros((origin.len(), cols));
        for (((mut row, values), label), o) in
            out.rows_mut().into_iter().zip(x.rows()).zip(y).zip(origin)
        {
            let label: f64 = label.trim().parse().map_err(|_| {
                Error::config(
                    "output",
                    format!("a .npy file holds numbers; the label {label:?} is not one"),
                )
            })?;
            let mut features = values.iter();
            for c in 0..self.header.len() {
                row[c] = match *o {
                    _ if c == self.label_col => label,
                    Origin::Real(i) => {
                        let field = &self.records[i][c];
                        field.trim().parse().map_err(|_| {
                            Error::config(
                                "output",
                                format!("input value {field:?} does not read as a float64"),
                            )
                        })?
                    }
                    Origin::Synthetic { .. } => {
                        f64::from(*features.next().expect("a value per feature"))
                    }
                };
            }
            if mark {
                row[cols - 1] = if o.is_synthetic() { 1.0 } else { 0.0 };
            }
        }
        write_atomic(path, |w| Ok(out.write_npy(w)?))
    }
}

fn csv_error(source: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    Error::Parse {
        path: source.to_path_buf(),
        line,
        reason,
    }
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
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    // A finished file gets the usual permissions (0666 less the umask), not a temporary's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(&dir).map_err(io)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        w.flush().map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_label_by_name_and_reports_bad_cells() {
        let csv = "a,label,b\n1,x,2\n3,y,4.5\n";
        let t = Table::from_reader(csv.as_bytes(), Path::new("t.csv"), Some("label")).unwrap();
        assert_eq!(t.label_col, 1);
        assert_eq!(t.y, vec!["x", "y"]);
        assert_eq!(t.x, ndarray::array![[1.0, 2.0], [3.0, 4.5]]);

        let bad = "a,label\n1,x\nfoo,y\n";
        let err = Table::from_reader(bad.as_bytes(), Path::new("t.csv"), None).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let ragged = "a,label\n1,x\n2\n";
        let err = Table::from_reader(ragged.as_bytes(), Path::new("t.csv"), None).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }
}
