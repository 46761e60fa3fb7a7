//! Labelled tables in CSV files: numeric and categorical feature columns plus one label column
//! kept as text.
//!
//! Input rows are kept as read, so balanced output repeats them field for field; only synthetic rows
//! are formatted (shortest representation that reads back to the same `f32`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::origin::Origin;
use crate::rng::{Purpose, Stream};

/// Rows read or written between checks for a requested stop ([`crate::interrupt`]).
const CHECK_ROWS: usize = 65_536;

/// The type of a feature column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feature {
    /// Numbers; its values are a column of [`Table::x`].
    Numeric,
    /// Text values (or numbers the caller calls categories), each a category; its values are a
    /// column of [`Table::codes`], indices into `categories`.
    Categorical {
        /// Every value of the column, exactly as written, in order of first appearance. A missing
        /// value (empty, `NA`, `NaN`) is a category of its own.
        categories: Vec<String>,
    },
}

/// Columns whose type the caller fixes instead of the reader's guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeHints {
    /// Columns read as categories even where every value is a number.
    pub categorical: Vec<String>,
    /// Columns that must hold numbers.
    pub numeric: Vec<String>,
}

/// A seeded uniform sample of at most `rows` rows of each class, drawn while the file is read
/// (reservoir sampling, Vitter's Algorithm R): memory holds the sampled rows only, however many
/// rows a class has. Row `i` (from 0) of a class, past the first `rows`, replaces slot
/// `j = uniform(0..=i)` when `j < rows`, `j` drawn from element `i` of the stream
/// `(seed, Purpose::Sample, class)`, classes numbered in order of first appearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Rows kept per class at most.
    pub rows: usize,
    /// Seed of the choice.
    pub seed: u64,
}

/// Where a row read goes in a sample being drawn.
enum Place {
    /// At the end of the rows kept.
    Append,
    /// Over the row kept in this slot.
    Replace(usize),
    /// Nowhere.
    Skip,
}

/// The state of a [`Sample`] being drawn: per class, its number, rows seen and slots held.
struct Reservoir {
    sample: Sample,
    classes: std::collections::HashMap<String, (u32, u64, Vec<usize>)>,
}

impl Reservoir {
    fn new(sample: Sample) -> Self {
        Reservoir {
            sample,
            classes: Default::default(),
        }
    }

    /// Rows read of each class.
    fn seen(self) -> std::collections::BTreeMap<String, usize> {
        (self.classes.into_iter())
            .map(|(label, (_, seen, _))| (label, seen as usize))
            .collect()
    }

    /// Where the next row of class `label` goes; `kept` rows are held so far.
    fn place(&mut self, label: &str, kept: usize) -> Place {
        let count = self.classes.len() as u32;
        let (class, seen, slots) = self
            .classes
            .entry(label.to_string())
            .or_insert_with(|| (count, 0, Vec::new()));
        let i = *seen;
        *seen += 1;
        if (i as usize) < self.sample.rows {
            slots.push(kept);
            return Place::Append;
        }
        let stream = Stream::new(self.sample.seed, Purpose::Sample, *class);
        let j = crate::rng::reservoir_slot(&stream, i) as usize;
        match slots.get(j) {
            Some(&slot) => Place::Replace(slot),
            None => Place::Skip,
        }
    }
}

/// A CSV table split into numeric features, categorical features and a label column.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names in file order.
    pub header: Vec<String>,
    /// Position of the label column in `header`.
    pub label_col: usize,
    /// The numeric features, one row per record, in file order.
    pub x: Array2<f32>,
    /// The categorical features as codes (see [`Feature::Categorical`]), in file order; no
    /// columns when every feature is numeric.
    pub codes: Array2<u32>,
    /// The type of each feature column, in file order without the label.
    pub features: Vec<Feature>,
    /// Labels exactly as written.
    pub y: Vec<String>,
    /// Where the rows' text is, to write input rows back field for field.
    text: Text,
    /// The byte position of each row's record in `text`.
    starts: Vec<u64>,
    delimiter: u8,
    /// Rows of each class in the file where only a sample of them was kept.
    seen: Option<std::collections::BTreeMap<String, usize>>,
}

impl Table {
    /// Reads a CSV file with a header row; `label` names the label column (default: the last).
    pub fn read_csv(path: &Path, label: Option<&str>) -> Result<Table> {
        Table::read_csv_with(path, label, b',')
    }

    /// [`Table::read_csv`] with another field delimiter (written back the same way). A UTF-8
    /// byte-order mark and CRLF line ends are accepted.
    pub fn read_csv_with(path: &Path, label: Option<&str>, delimiter: u8) -> Result<Table> {
        Table::read_csv_file(path, label, delimiter, &TypeHints::default(), None)
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
        Table::from_reader_typed(reader, source, label, delimiter, &TypeHints::default())
    }

    /// [`Table::from_reader_with`], with columns the caller types itself: `hints.categorical`
    /// are categorical whatever they hold, `hints.numeric` must hold numbers (a field that is
    /// not one is an error naming its line and column). Every other column is categorical when
    /// any of its fields, other than a missing value (empty, `NA`, `NaN`), is not a number.
    pub fn from_reader_typed<R: Read>(
        mut reader: R,
        source: &Path,
        label: Option<&str>,
        delimiter: u8,
        hints: &TypeHints,
    ) -> Result<Table> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|e| Error::Io {
            path: source.to_path_buf(),
            source: e,
        })?;
        let size = bytes.len() as u64;
        let parsed = parse_csv(
            std::io::Cursor::new(&bytes[..]),
            source,
            label,
            delimiter,
            hints,
            size,
            None,
        )?;
        Ok(parsed.into_table(Text::Memory(bytes), delimiter))
    }

    /// [`Table::from_reader_typed`] on a file, streamed: the file's text is not kept but read
    /// again when rows are written back (and checked unchanged then).
    fn read_csv_file(
        path: &Path,
        label: Option<&str>,
        delimiter: u8,
        hints: &TypeHints,
        sample: Option<Sample>,
    ) -> Result<Table> {
        let io = |source: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let parsed = parse_csv(file, path, label, delimiter, hints, meta.len(), sample)?;
        let text = Text::File {
            path: path.to_path_buf(),
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        Ok(parsed.into_table(text, delimiter))
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

    /// Reads `.npy` files with [`Table::read_npy`] and anything else as CSV with `delimiter`.
    pub fn read(path: &Path, label: Option<&str>, delimiter: u8) -> Result<Table> {
        Table::read_typed(path, label, delimiter, &TypeHints::default())
    }

    /// [`Table::read`] with column types fixed by `hints` (see [`Table::from_reader_typed`]).
    /// A `.npy` file holds numbers only: categorical columns are refused there.
    pub fn read_typed(
        path: &Path,
        label: Option<&str>,
        delimiter: u8,
        hints: &TypeHints,
    ) -> Result<Table> {
        if is_npy(path) {
            if let Some(name) = hints.categorical.first() {
                return Err(Error::config(
                    "categorical",
                    format!(
                        "{name:?}: a .npy file holds numbers only; categorical columns need CSV"
                    ),
                ));
            }
            Table::read_npy(path, label)
        } else {
            Table::read_csv_file(path, label, delimiter, hints, None)
        }
    }

    /// [`Table::read_typed`] keeping only a [`Sample`] of each class's rows, chosen as the file
    /// is read: memory for `sample.rows` rows per class, whatever the file holds. The rows kept
    /// are in no particular order; writing them back writes those rows.
    pub fn read_sample(
        path: &Path,
        label: Option<&str>,
        delimiter: u8,
        hints: &TypeHints,
        sample: Sample,
    ) -> Result<Table> {
        if is_npy(path) {
            let mut table = Table::read_typed(path, label, delimiter, hints)?;
            let mut reservoir = Reservoir::new(sample);
            let mut kept: Vec<usize> = Vec::new();
            for (row, label) in table.y.iter().enumerate() {
                match reservoir.place(label, kept.len()) {
                    Place::Append => kept.push(row),
                    Place::Replace(slot) => kept[slot] = row,
                    Place::Skip => {}
                }
            }
            table.x = table.x.select(ndarray::Axis(0), &kept);
            table.codes = table.codes.select(ndarray::Axis(0), &kept);
            table.y = kept.iter().map(|&i| table.y[i].clone()).collect();
            table.starts = kept.iter().map(|&i| table.starts[i]).collect();
            table.seen = Some(reservoir.seen());
            return Ok(table);
        }
        Table::read_csv_file(path, label, delimiter, hints, Some(sample))
    }

    /// The feature columns' names, in file order.
    pub fn feature_names(&self) -> Vec<String> {
        feature_names(&self.header, self.label_col)
    }

    /// Whether any feature column is categorical.
    pub fn has_categories(&self) -> bool {
        self.codes.ncols() > 0
    }

    /// The number of categories of each categorical column, in file order.
    pub fn levels(&self) -> Vec<u32> {
        self.features
            .iter()
            .filter_map(|f| match f {
                Feature::Categorical { categories } => Some(categories.len() as u32),
                Feature::Numeric => None,
            })
            .collect()
    }

    /// The categories of each categorical column, by column name.
    pub fn categories_by_name(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.feature_names()
            .into_iter()
            .zip(&self.features)
            .filter_map(|(n, f)| match f {
                Feature::Categorical { categories } => Some((n, categories.clone())),
                Feature::Numeric => None,
            })
            .collect()
    }

    /// Re-expresses the categorical columns in the given dictionaries (the categories of each
    /// categorical column by name, as saved with models): codes become indices into them. A
    /// column typed differently, or a category missing from its dictionary, is an error naming
    /// it.
    pub fn recode(
        &mut self,
        dictionaries: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        let names = self.feature_names();
        let mut j = 0;
        for (name, feature) in names.iter().zip(&mut self.features) {
            let typed_here = matches!(feature, Feature::Categorical { .. });
            let dictionary = dictionaries.get(name);
            if typed_here != dictionary.is_some() {
                return Err(Error::config(
                    "models",
                    format!(
                        "column {name:?} is {} here but was {} when the models were fitted",
                        if typed_here { "categorical" } else { "numeric" },
                        if typed_here { "numeric" } else { "categorical" },
                    ),
                ));
            }
            let (Feature::Categorical { categories }, Some(dictionary)) = (feature, dictionary)
            else {
                continue;
            };
            let mut map = Vec::with_capacity(categories.len());
            for c in categories.iter() {
                let k = dictionary.iter().position(|d| d == c).ok_or_else(|| {
                    Error::config(
                        "models",
                        format!(
                            "category {c:?} of column {name:?} was not in the data the models were fitted on"
                        ),
                    )
                })?;
                map.push(k as u32);
            }
            self.codes.column_mut(j).mapv_inplace(|c| map[c as usize]);
            *categories = dictionary.clone();
            j += 1;
        }
        Ok(())
    }

    /// The names of the categorical columns, in file order.
    pub fn categorical_names(&self) -> Vec<String> {
        self.feature_names()
            .into_iter()
            .zip(&self.features)
            .filter(|(_, f)| matches!(f, Feature::Categorical { .. }))
            .map(|(n, _)| n)
            .collect()
    }

    /// Calls `f(row, field)` with the text of column `column` (as read) of every data row, in
    /// order, reading the file again (one row in memory at a time).
    pub fn each_field(
        &self,
        column: usize,
        mut f: impl FnMut(usize, &str) -> Result<()>,
    ) -> Result<()> {
        let mut records = self.records()?;
        for row in 0..self.starts.len() {
            if row % CHECK_ROWS == 0 {
                crate::interrupt::check()?;
            }
            f(row, &records.get(row)?[column])?;
        }
        Ok(())
    }

    /// Rows of each class in the file, counted as it was read: also those a sample left out
    /// ([`Table::read_sample`]).
    pub fn rows_read(&self) -> std::collections::BTreeMap<String, usize> {
        match &self.seen {
            Some(seen) => seen.clone(),
            None => {
                let mut counts = std::collections::BTreeMap::new();
                for label in &self.y {
                    *counts.entry(label.clone()).or_insert(0) += 1;
                }
                counts
            }
        }
    }

    /// The label column's name.
    pub fn label_name(&self) -> &str {
        &self.header[self.label_col]
    }

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

/// Where a table's rows are as text.
#[derive(Debug, Clone)]
enum Text {
    /// Bytes read from a stream (or made from an array), kept.
    Memory(Vec<u8>),
    /// A file, read again when rows are written back; its length and modification time when
    /// it was read tell whether it changed since.
    File {
        path: PathBuf,
        len: u64,
        modified: Option<std::time::SystemTime>,
    },
}

/// Reads a table's records by row number, sequentially where rows come in order.
struct Records<'a> {
    reader: csv::Reader<Box<dyn ReadSeek + 'a>>,
    starts: &'a [u64],
    fields: usize,
    next: usize,
    record: csv::StringRecord,
    source: PathBuf,
}

trait ReadSeek: Read + std::io::Seek {}
impl<T: Read + std::io::Seek> ReadSeek for T {}

impl Table {
    /// A reader of this table's input records.
    fn records(&self) -> Result<Records<'_>> {
        let (inner, source): (Box<dyn ReadSeek + '_>, PathBuf) = match &self.text {
            Text::Memory(bytes) => (
                Box::new(std::io::Cursor::new(&bytes[..])),
                PathBuf::from("<input>"),
            ),
            Text::File {
                path,
                len,
                modified,
            } => {
                let io = |source: std::io::Error| Error::Io {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::open(path).map_err(io)?;
                let meta = file.metadata().map_err(io)?;
                if meta.len() != *len || meta.modified().ok() != *modified {
                    return Err(changed(path));
                }
                (Box::new(file), path.clone())
            }
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(inner);
        Ok(Records {
            reader,
            starts: &self.starts,
            fields: self.header.len(),
            next: usize::MAX,
            record: csv::StringRecord::new(),
            source,
        })
    }
}

impl Records<'_> {
    /// The record of row `i`.
    fn get(&mut self, i: usize) -> Result<&csv::StringRecord> {
        // Rows in file order are read one after another; a sample's rows are not in file order.
        if i != self.next || self.reader.position().byte() != self.starts[i] {
            let mut at = csv::Position::new();
            at.set_byte(self.starts[i]);
            self.reader
                .seek(at)
                .map_err(|e| csv_error(&self.source, e))?;
        }
        let read = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| csv_error(&self.source, e))?;
        if !read || self.record.len() != self.fields {
            return Err(changed(&self.source));
        }
        self.next = i + 1;
        Ok(&self.record)
    }
}

fn changed(path: &Path) -> Error {
    Error::DataModel(format!(
        "{} changed while smrt was running; run again on a file that stays as it is",
        path.display()
    ))
}

/// A table as read, before its text is attached.
struct Parsed {
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
    fn into_table(self, text: Text, delimiter: u8) -> Table {
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
fn parse_csv<R: Read + std::io::Seek>(
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

/// The header's names without the label column's.
fn feature_names(header: &[String], label_col: usize) -> Vec<String> {
    let mut names = header.to_vec();
    names.remove(label_col);
    names
}

/// A missing value: empty, `NA` or `NaN` (any case, spaces around ignored).
fn is_missing(field: &str) -> bool {
    let f = field.trim();
    f.is_empty() || f.eq_ignore_ascii_case("na") || f.eq_ignore_ascii_case("nan")
}

/// Whether `path` names a `.npy` file.
pub fn is_npy(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

impl Table {
    /// The resampled rows as a float64 `.npy` array in this table's column order (plus the
    /// 0/1 mark column last when asked): input rows keep their values exactly.
    fn write_npy<L: AsRef<str>>(
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

/// Where the one column of `header` called `name` is (`None` where there is none). A name that
/// several columns share is an error naming them, for `option`: taking the first would be a
/// guess.
pub fn column_named(header: &[String], name: &str, option: &'static str) -> Result<Option<usize>> {
    let columns: Vec<usize> = (0..header.len()).filter(|&c| header[c] == name).collect();
    if columns.len() > 1 {
        let numbers: Vec<String> = columns.iter().map(|c| (c + 1).to_string()).collect();
        return Err(Error::config(
            option,
            format!(
                "{name:?} names {} columns (columns {}); rename them so each name is one column",
                columns.len(),
                numbers.join(", ")
            ),
        ));
    }
    Ok(columns.first().copied())
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

        let bad = "a,label\n1,x\ninf,y\n";
        let err = Table::from_reader(bad.as_bytes(), Path::new("t.csv"), None).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let ragged = "a,label\n1,x\n2\n";
        let err = Table::from_reader(ragged.as_bytes(), Path::new("t.csv"), None).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn a_name_given_for_two_columns_is_an_error_and_an_unnamed_repeat_is_not() {
        let csv = "a,a,label\n1,2,x\n3,4,y\n";
        let path = Path::new("t.csv");
        let t = Table::from_reader(csv.as_bytes(), path, None).unwrap();
        assert_eq!(t.x, ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
        let err = Table::from_reader(csv.as_bytes(), path, Some("a")).unwrap_err();
        assert!(err.to_string().contains("columns 1, 2"), "{err}");
        let hints = TypeHints {
            categorical: vec!["a".into()],
            numeric: Vec::new(),
        };
        let err = Table::from_reader_typed(csv.as_bytes(), path, None, b',', &hints).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"a\" names 2 columns"), "{message}");
        assert!(message.contains("categorical"), "{message}");
    }

    #[test]
    fn text_makes_a_column_categorical_and_hints_override_the_guess() {
        let csv = "n,city,flag,label\n1,Paris,yes,a\n2,,no,a\n3,NA,yes,b\n4,paris,no,b\n";
        let t = Table::from_reader(csv.as_bytes(), Path::new("t.csv"), None).unwrap();
        assert_eq!(t.x, ndarray::array![[1.0], [2.0], [3.0], [4.0]]);
        assert_eq!(t.features[0], Feature::Numeric);
        // Values as written, case kept; a missing value is a category of its own.
        let Feature::Categorical { categories } = &t.features[1] else {
            panic!("city is categorical")
        };
        assert_eq!(categories, &["Paris", "", "NA", "paris"]);
        assert_eq!(t.codes.column(0).to_vec(), vec![0, 1, 2, 3]);
        assert_eq!(t.codes.column(1).to_vec(), vec![0, 1, 0, 1]);
        assert_eq!(t.levels(), vec![4, 2]);
        assert_eq!(t.categorical_names(), vec!["city", "flag"]);

        let hints = |categorical: &[&str], numeric: &[&str]| TypeHints {
            categorical: categorical.iter().map(|s| s.to_string()).collect(),
            numeric: numeric.iter().map(|s| s.to_string()).collect(),
        };
        let read = |h: &TypeHints| {
            Table::from_reader_typed(csv.as_bytes(), Path::new("t.csv"), None, b',', h)
        };
        let t = read(&hints(&["n"], &[])).unwrap();
        assert_eq!(t.x.ncols(), 0);
        assert_eq!(t.levels(), vec![4, 4, 2]);
        let err = read(&hints(&[], &["city"])).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("\"city\""), "{err}");
        let err = read(&hints(&["label"], &[])).unwrap_err().to_string();
        assert!(err.contains("not a feature column"), "{err}");
        let err = read(&hints(&["n"], &["n"])).unwrap_err().to_string();
        assert!(err.contains("both"), "{err}");

        // A missing value in a numeric column stays an error naming its line and column.
        let gap = "n,m,label\n1,2,a\nNA,3,b\n";
        let err = Table::from_reader(gap.as_bytes(), Path::new("t.csv"), None).unwrap_err();
        let err = err.to_string();
        assert!(err.contains("line 3") && err.contains("\"n\""), "{err}");
    }
}

#[cfg(test)]
mod streaming_tests {
    use super::*;

    #[test]
    fn a_sample_keeps_a_uniform_seeded_subset_of_each_large_class() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        // 2,000 rows of "big" (v = row number), 30 of "small"; a text column turns
        // categorical only at the end, so the file is read twice.
        let mut text = String::from("v,c,label\n");
        for i in 0..2_030 {
            let label = if i % 68 == 67 && i < 2_040 {
                "small"
            } else {
                "big"
            };
            let c = if i == 2_029 { "late" } else { "1" };
            text.push_str(&format!("{i},{c},{label}\n"));
        }
        std::fs::write(&input, &text).unwrap();
        let hints = TypeHints::default();
        let read = |rows, seed| {
            Table::read_sample(&input, None, b',', &hints, Sample { rows, seed }).unwrap()
        };
        let full = Table::read_csv(&input, None).unwrap();
        let counts = full.rows_read();
        let (big, small) = (counts["big"], counts["small"]);
        assert_eq!(big + small, 2_030);
        // A sample as large as every class is the whole table, rows in order.
        let all = read(big, 1);
        assert_eq!(
            (all.x.clone(), all.y.clone()),
            (full.x.clone(), full.y.clone())
        );
        // 100 rows of the big class: distinct real rows; the small class whole; true counts.
        let t = read(100, 1);
        assert_eq!(t.rows_read(), counts);
        let rows_of = |t: &Table, class: &str| -> Vec<u32> {
            let mut v: Vec<u32> = (t.y.iter().zip(t.x.column(0)))
                .filter(|(l, _)| *l == class)
                .map(|(_, &v)| v as u32)
                .collect();
            v.sort_unstable();
            v
        };
        let picked = rows_of(&t, "big");
        assert_eq!(picked.len(), 100);
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "distinct rows");
        assert_eq!(rows_of(&t, "small").len(), small);
        assert_eq!(t.feature_names(), full.feature_names());
        // Written back, the kept rows are the file's own lines.
        let out = dir.path().join("out.csv");
        let origin: Vec<Origin> = (0..t.y.len()).map(Origin::Real).collect();
        t.write_resampled(&out, t.x.view(), t.codes.view(), &t.y, &origin, None)
            .unwrap();
        let lines: std::collections::HashSet<&str> = text.lines().collect();
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(written.lines().all(|l| lines.contains(l)));
        // Same seed, same sample; every row about equally likely over seeds (each big row is
        // kept with probability 100 / big: over 200 seeds about 10 times, never 40).
        assert_eq!(rows_of(&read(100, 1), "big"), picked);
        let mut hits = vec![0u32; 2_030];
        for seed in 0..200 {
            for v in rows_of(&read(100, seed), "big") {
                hits[v as usize] += 1;
            }
        }
        let big_rows: Vec<u32> = (0..2_030)
            .filter(|&i| full.y[i] == "big")
            .map(|i| hits[i])
            .collect();
        let mean = f64::from(big_rows.iter().sum::<u32>()) / big_rows.len() as f64;
        assert!((mean - 200.0 * 100.0 / big as f64).abs() < 1e-9);
        assert!(
            big_rows.iter().all(|&h| h < 40),
            "{:?}",
            big_rows.iter().max()
        );
        // The late rows are as likely as the early ones.
        let (early, late) = big_rows.split_at(big_rows.len() / 2);
        let avg = |v: &[u32]| f64::from(v.iter().sum::<u32>()) / v.len() as f64;
        assert!(
            (avg(early) - avg(late)).abs() < 1.5,
            "{} vs {}",
            avg(early),
            avg(late)
        );
    }

    #[test]
    fn a_file_changed_between_reading_and_writing_is_an_error_not_wrong_rows() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, "a,b,label\n1,x,p\n2,y,q\n").unwrap();
        let t = Table::read_csv(&input, None).unwrap();
        let origin = [Origin::Real(1), Origin::Real(0)];
        let out = dir.path().join("out.csv");
        let y = ["q".to_string(), "p".to_string()];
        t.write_resampled(&out, t.x.view(), t.codes.view(), &y, &origin, None)
            .unwrap();
        // Rows written back in any order, field for field.
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "a,b,label\n2,y,q\n1,x,p\n"
        );
        std::fs::write(&input, "a,b,label\n1,x,p\n2,y,q\n3,z,r\n").unwrap();
        let e = t
            .write_resampled(&out, t.x.view(), t.codes.view(), &y, &origin, None)
            .unwrap_err();
        assert!(
            e.to_string().contains("changed while smrt was running"),
            "{e}"
        );
    }

    #[test]
    fn a_column_turning_to_text_late_is_read_again_as_categories() {
        let mut text = String::from("n,late,label\n");
        for i in 0..3000 {
            let late = if i == 2500 {
                "seven".to_string()
            } else {
                (i % 4).to_string()
            };
            text.push_str(&format!("{i},{late},{}\n", i % 2));
        }
        let t = Table::from_reader(text.as_bytes(), Path::new("t.csv"), None).unwrap();
        assert_eq!(t.x.ncols(), 1);
        assert_eq!(t.codes.ncols(), 1);
        let Feature::Categorical { categories } = &t.features[1] else {
            panic!("late is categorical")
        };
        assert_eq!(categories.len(), 5);
        assert_eq!(categories[t.codes[[2500, 0]] as usize], "seven");
        assert_eq!(t.x[[2999, 0]], 2999.0);
    }
}
