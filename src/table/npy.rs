//! `.npy` arrays: read as a numeric table, written as float64.

use std::io::Read;
use std::path::Path;

use ndarray::{Array2, ArrayView2};

use super::records::Text;
use super::write::write_atomic;
use super::{Feature, Table};
use crate::error::{Error, Result};
use crate::origin::Origin;

impl Table {
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
        check_npy_size(path, &bad)?;
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
        // The rows as CSV text, so that input rows are written back as everywhere else.
        let mut text = String::new();
        let mut starts = Vec::with_capacity(rows);
        for (r, row) in data.rows().into_iter().enumerate() {
            starts.push(text.len() as u64);
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(Error::NonFinite {
                        row: r,
                        col: c,
                        value: v as f32,
                    });
                }
                if c > 0 {
                    text.push(',');
                }
                text.push_str(&v.to_string());
                if c == label_col {
                    y.push(v.to_string());
                } else {
                    values.push(v as f32);
                }
            }
            text.push('\n');
        }
        Ok(Table {
            header,
            label_col,
            x: Array2::from_shape_vec((rows, cols - 1), values).expect("rows x features"),
            codes: Array2::zeros((rows, 0)),
            features: vec![Feature::Numeric; cols - 1],
            y,
            text: Text::Memory(text.into_bytes()),
            starts,
            delimiter: b',',
            seen: None,
        })
    }
}

/// Refuses a `.npy` file whose header claims more values than the file holds, before anything
/// is allocated for them (the reader would otherwise ask for the claimed size at once).
fn check_npy_size(path: &Path, bad: &dyn Fn(String) -> Error) -> Result<()> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let not_npy = || bad("not a .npy file (no NumPy header)".into());
    let mut lead = [0u8; 12];
    file.read_exact(&mut lead).map_err(|_| not_npy())?;
    if &lead[..6] != b"\x93NUMPY" {
        return Err(not_npy());
    }
    let (header_len, header_start) = match lead[6] {
        1 => (u64::from(u16::from_le_bytes([lead[8], lead[9]])), 10u64),
        2 | 3 => (
            u64::from(u32::from_le_bytes([lead[8], lead[9], lead[10], lead[11]])),
            12,
        ),
        _ => return Err(not_npy()),
    };
    // Headers are a few hundred bytes; a claim of more is not a header.
    if header_len > 1 << 20 || header_start + header_len > file_len {
        return Err(not_npy());
    }
    let mut header = vec![0u8; header_len as usize];
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(header_start))
        .map_err(io)?;
    file.read_exact(&mut header).map_err(|_| not_npy())?;
    let header = String::from_utf8(header).map_err(|_| not_npy())?;
    let data_start = header_start + header_len;
    let item = if header.contains("f8") {
        8u128
    } else if header.contains("f4") {
        4
    } else {
        return Ok(()); // the reader names the unsupported type
    };
    let Some(shape) = header
        .split("'shape'")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|rest| rest.split(')').next())
    else {
        return Ok(());
    };
    let mut values = 1u128;
    for dim in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(n) = dim.parse::<u128>() else {
            return Ok(());
        };
        values = values.saturating_mul(n);
    }
    let held = u128::from(file_len - data_start);
    if values.saturating_mul(item) > held {
        return Err(bad(format!(
            "the header claims {values} values of {item} bytes, but the file holds {held} bytes of data"
        )));
    }
    Ok(())
}

/// Whether `path` names a `.npy` file.
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

impl Table {
    /// The resampled rows as a float64 `.npy` array in this table's column order (plus the
    /// 0/1 mark column last when asked): input rows keep their values exactly.
    pub(super) fn write_npy<L: AsRef<str>>(
        &self,
        path: &Path,
        x: ArrayView2<'_, f32>,
        y: &[L],
        origin: &[Origin],
        mark: bool,
    ) -> Result<()> {
        use ndarray_npy::WriteNpyExt;
        let cols = self.header.len() + usize::from(mark);
        let mut out = Array2::<f64>::zeros((origin.len(), cols));
        let mut records = self.records()?;
        for (((mut row, values), label), o) in
            out.rows_mut().into_iter().zip(x.rows()).zip(y).zip(origin)
        {
            let label = label.as_ref();
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
                        let field = &records.get(i)?[c];
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
