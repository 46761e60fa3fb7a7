//! The fuzz targets' corpus (fuzz/corpus, crashes found included) replayed through the same
//! functions the targets call: every input gives a value or an error, never a panic.

#[path = "../fuzz/cases.rs"]
mod cases;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn the_csv_corpus_replays_without_a_panic() {
    let inputs = corpus("csv");
    assert!(inputs.len() >= 5);
    for (_, data) in &inputs {
        cases::csv(data);
    }
}

#[test]
fn the_model_corpus_replays_without_a_panic() {
    let inputs = corpus("models");
    for (_, data) in &inputs {
        cases::models(data);
    }
    // The seed the fuzzer mutates is a model that loads: mutations then reach the shape checks.
    let (_, valid) = inputs
        .iter()
        .find(|(name, _)| name.ends_with("valid.bin"))
        .unwrap();
    let cut = usize::from(u16::from_le_bytes([valid[0], valid[1]]));
    let (meta, weights) = valid[2..].split_at(cut);
    assert!(smrt::Vae::from_bytes(meta, weights).is_ok());
    assert!(!cases::model_input(meta, weights).is_empty());
}
