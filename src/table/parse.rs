//! The CSV reader: column types guessed (or fixed by hints) in streaming passes.

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use super::records::Text;
use super::sample::{Place, Reservoir, Sample};
use super::{column_named, feature_names, is_missing, Feature, Table, TypeHints, CHECK_ROWS};
use crate::error::{Error, Result};

/// A table as read, before its text is attached.
pub(super) struct Parsed {
    header: Vec<String>,
    label_col: usize,
    x: Array2<f32>,
    codes: Array2<u32>,
    features: Vec<Feature>,
    y: Vec<String>,
    starts: Vec<u64>,
    seen: Option<std::collections::BTreeMap<String, usize>>,
}

impl Parsed {
    pub(super) fn into_table(self, text: Text, delimiter: u8) -> Table {
        Table {
            header: self.header,
            label_col: self.label_col,
            x: self.x,
            codes: self.codes,
            features: self.features,
            y: self.y,
            text,
            starts: self.starts,
            delimiter,
            seen: self.seen,
        }
    }
}

/// One feature column while a pass reads it.
enum Column {
    /// Numbers so far; the first field that made the column unusable as numbers (line, reason),
    /// reported if the column stays numeric; whether any field was a number.
    Numeric {
        problem: Option<(u64, String)>,
        any_number: bool,
    },
    /// Categories, in order of first appearance.
    Categorical {
        categories: Vec<String>,
        index: std::collections::HashMap<String, u32>,
    },
}

/// Reads CSV from `inner` in one streaming pass per column-type change: a column assumed
/// numeric that turns out to hold text (or nothing but missing values) is read again as
/// categorical from the start. `size` (the input's length in bytes) sizes the buffers.
pub(super) fn parse_csv<R: Read + std::io::Seek>(
    mut inner: R,
    source: &Path,
    label: Option<&str>,
    delimiter: u8,
    hints: &TypeHints,
    size: u64,
    sample: Option<Sample>,
) -> Result<Parsed> {
    let parse = |line: u64, reason: String| Error::Parse {
        path: source.to_path_buf(),
        line,
        reason,
    };
    let mut forced: Vec<usize> = Vec::new();
    loop {
        inner
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Error::Io {
                path: source.to_path_buf(),
                source: e,
            })?;
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .delimiter(delimiter)
            .from_reader(inner);
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
            Some(name) => column_named(&header, name, "label")?.ok_or_else(|| {
                Error::config(
                    "label",
                    format!(
                        "no column named {name:?}; columns are {}",
                        header.join(", ")
                    ),
                )
            })?,
        };
        let hinted = (hints.categorical.iter().map(|c| (c, "categorical")))
            .chain(hints.numeric.iter().map(|c| (c, "numeric")));
        for (name, option) in hinted {
            if column_named(&header, name, option)?.is_none_or(|c| c == label_col) {
                return Err(Error::config(
                    "categorical",
                    format!(
                        "{name:?} is not a feature column; feature columns are {}",
                        feature_names(&header, label_col).join(", ")
                    ),
                ));
            }
        }
        if let Some(both) = hints.categorical.iter().find(|c| hints.numeric.contains(c)) {
            return Err(Error::config(
                "numeric",
                format!("column {both:?} is named both categorical and numeric"),
            ));
        }
        let feature_cols: Vec<usize> = (0..header.len()).filter(|&c| c != label_col).collect();
        let (mut n_num, mut n_cat) = (0, 0);
        let mut columns: Vec<Column> = feature_cols
            .iter()
            .map(|&c| {
                if hints.categorical.contains(&header[c]) || forced.contains(&c) {
                    n_cat += 1;
                    Column::Categorical {
                        categories: Vec::new(),
                        index: Default::default(),
                    }
                } else {
                    n_num += 1;
                    Column::Numeric {
                        problem: None,
                        any_number: false,
                    }
                }
            })
            .collect();
        let (mut x, mut codes, mut y, mut starts) =
            (Vec::<f32>::new(), Vec::<u32>::new(), Vec::new(), Vec::new());
        let mut record = csv::StringRecord::new();
        let mut retype = None;
        let mut reservoir = sample.map(Reservoir::new);
        // The row being read, placed once every field is parsed.
        let (mut row_x, mut row_codes) = (Vec::<f32>::new(), Vec::<u32>::new());
        let mut read = 0usize;
        'rows: loop {
            let more = rdr
                .read_record(&mut record)
                .map_err(|e| csv_error(source, e))?;
            if !more {
                break;
            }
            let rows = read;
            read += 1;
            if rows % CHECK_ROWS == 0 {
                crate::interrupt::check()?;
            }
            let position = record.position().expect("a record read has a position");
            if rows == 1024 && reservoir.is_none() {
                // Room for every row, estimated from the first ones, so that growing the
                // buffers does not double their memory.
                let per_row = (position.byte() / 1024).max(1);
                let expected = (size / per_row) as usize + 16;
                x.reserve(expected * n_num);
                codes.reserve(expected * n_cat);
                y.reserve(expected);
                starts.reserve(expected);
            }
            row_x.clear();
            row_codes.clear();
            let line = position.line();
            for (column, &c) in columns.iter_mut().zip(&feature_cols) {
                let field = &record[c];
                match column {
                    Column::Categorical {
                        categories, index, ..
                    } => {
                        let code = match index.get(field) {
                            Some(&code) => code,
                            None => {
                                categories.push(field.to_string());
                                let code = (categories.len() - 1) as u32;
                                index.insert(field.to_string(), code);
                                code
                            }
                        };
                        row_codes.push(code);
                    }
                    Column::Numeric {
                        problem,
                        any_number,
                        ..
                    } => {
                        let name = &header[c];
                        let value = match field.trim().parse::<f32>() {
                            Ok(v) if v.is_finite() => {
                                *any_number = true;
                                v
                            }
                            Ok(_) if !is_missing(field) => {
                                problem.get_or_insert((
                                    line,
                                    format!("column {name:?}: {field:?} is not finite"),
                                ));
                                *any_number = true;
                                0.0
                            }
                            _ if is_missing(field) => {
                                problem.get_or_insert((
                                    line,
                                    format!("column {name:?}: {field:?} is not a number"),
                                ));
                                0.0
                            }
                            _ if hints.numeric.contains(name) => {
                                problem.get_or_insert((
                                    line,
                                    format!("column {name:?}: {field:?} is not a number"),
                                ));
                                0.0
                            }
                            // Text: the column is categorical, read from the start as one.
                            _ => {
                                retype = Some(c);
                                break 'rows;
                            }
                        };
                        row_x.push(value);
                    }
                }
            }
            let place = match &mut reservoir {
                None => Place::Append,
                Some(r) => r.place(&record[label_col], starts.len()),
            };
            match place {
                Place::Append => {
                    x.extend_from_slice(&row_x);
                    codes.extend_from_slice(&row_codes);
                    starts.push(position.byte());
                    y.push(record[label_col].to_string());
                }
                Place::Replace(slot) => {
                    x[slot * n_num..(slot + 1) * n_num].copy_from_slice(&row_x);
                    codes[slot * n_cat..(slot + 1) * n_cat].copy_from_slice(&row_codes);
                    starts[slot] = position.byte();
                }
                Place::Skip => {}
            }
        }
        if retype.is_none() {
            // A column of nothing but missing values is categorical (one category).
            retype = columns
                .iter()
                .zip(&feature_cols)
                .find_map(|(col, &c)| match col {
                    Column::Numeric {
                        any_number: false, ..
                    } if !starts.is_empty() && !hints.numeric.contains(&header[c]) => Some(c),
                    _ => None,
                });
        }
        if let Some(c) = retype {
            forced.push(c);
            inner = rdr.into_inner();
            continue;
        }
        if starts.is_empty() {
            return Err(Error::EmptyInput("the file has a header but no rows"));
        }
        let mut features = Vec::with_capacity(columns.len());
        for column in columns {
            match column {
                Column::Numeric { problem, .. } => {
                    if let Some((line, reason)) = problem {
                        return Err(parse(line, reason));
                    }
                    features.push(Feature::Numeric);
                }
                Column::Categorical { categories, .. } => {
                    features.push(Feature::Categorical { categories })
                }
            }
        }
        let rows = starts.len();
        x.shrink_to_fit();
        codes.shrink_to_fit();
        return Ok(Parsed {
            header,
            label_col,
            x: Array2::from_shape_vec((rows, n_num), x).expect("rows x numeric columns"),
            codes: Array2::from_shape_vec((rows, n_cat), codes)
                .expect("rows x categorical columns"),
            features,
            y,
            starts,
            seen: reservoir.map(Reservoir::seen),
        });
    }
}

pub(super) fn csv_error(source: &Path, e: csv::Error) -> Error {
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
