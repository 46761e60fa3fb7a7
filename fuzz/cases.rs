//! What each fuzz target does with its input; `tests/fuzz_corpus.rs` replays the corpus through
//! the same functions.

use std::path::Path;

/// The CSV reader on `data`, with the default label column and with a named one.
pub fn csv(data: &[u8]) {
    let _ = smrt::table::Table::from_reader(data, Path::new("fuzz.csv"), None);
    let _ = smrt::table::Table::from_reader(data, Path::new("fuzz.csv"), Some("a"));
}

/// The model loader on `data`: the first two bytes (little-endian) give the metadata's length,
/// the metadata follows, the weights are the rest.
pub fn models(data: &[u8]) {
    let [a, b, rest @ ..] = data else { return };
    let cut = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
    let (meta, weights) = rest.split_at(cut);
    let _ = smrt::Vae::from_bytes(meta, weights);
}

/// A model input for [`models`] from the two files' bytes.
#[allow(dead_code)]
pub fn model_input(meta: &[u8], weights: &[u8]) -> Vec<u8> {
    let mut out = (meta.len() as u16).to_le_bytes().to_vec();
    out.extend(meta);
    out.extend(weights);
    out
}
