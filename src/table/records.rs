//! Input rows found again by their byte position, to write them back as read.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::parse::csv_error;
use super::Table;
use crate::error::{Error, Result};

/// Where a table's rows are as text.
#[derive(Debug, Clone)]
pub(super) enum Text {
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
pub(super) struct Records<'a> {
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
    pub(super) fn records(&self) -> Result<Records<'_>> {
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
    pub(super) fn get(&mut self, i: usize) -> Result<&csv::StringRecord> {
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
