//! A seeded uniform sample of each class's rows, drawn while a table is read.

use crate::rng::{Purpose, Stream};

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
pub(super) enum Place {
    /// At the end of the rows kept.
    Append,
    /// Over the row kept in this slot.
    Replace(usize),
    /// Nowhere.
    Skip,
}

/// The state of a [`Sample`] being drawn: per class, its number, rows seen and slots held.
pub(super) struct Reservoir {
    sample: Sample,
    classes: std::collections::HashMap<String, (u32, u64, Vec<usize>)>,
}

impl Reservoir {
    pub(super) fn new(sample: Sample) -> Self {
        Reservoir {
            sample,
            classes: Default::default(),
        }
    }

    /// Rows read of each class.
    pub(super) fn seen(self) -> std::collections::BTreeMap<String, usize> {
        (self.classes.into_iter())
            .map(|(label, (_, seen, _))| (label, seen as usize))
            .collect()
    }

    /// Where the next row of class `label` goes; `kept` rows are held so far.
    pub(super) fn place(&mut self, label: &str, kept: usize) -> Place {
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
