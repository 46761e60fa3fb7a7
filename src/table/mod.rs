//! Labelled tables in CSV or `.npy` files: numeric and categorical feature columns plus one label
//! column kept as text.
//!
//! Input rows are kept as read, so balanced output repeats them field for field; only synthetic rows
//! are formatted (shortest representation that reads back to the same `f32`).
//!
//! One job per file: `parse` reads CSV, `npy` reads and writes `.npy` arrays, `sample` keeps a
//! seeded sample of each class while reading, `records` finds input rows again by position, and
//! `write` writes resampled tables atomically.

mod npy;
mod parse;
mod records;
mod sample;
mod write;

pub use npy::is_npy;
pub use sample::Sample;
pub use write::{output_folder, write_atomic};

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use parse::parse_csv;
use records::Text;
use sample::{Place, Reservoir};

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
    use crate::origin::Origin;

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
