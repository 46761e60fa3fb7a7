//! Inputs nobody wrote by hand: every reader and parser gives a value or a clear error, never a
//! panic; valid tables round-trip exactly; balancers cope with degenerate data.

use std::path::Path;
use std::process::Command;

use ndarray::Array2;
use proptest::prelude::*;
use smrt::table::Table;
use smrt::{Balancer, Device, Origin, RandomOverSampler, Smote, Smrt, Vae, VaeConfig};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that looks like CSV: fields, quotes, delimiters, line ends, a byte-order mark.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just(";".to_string()),
        Just("\u{feff}".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
        Just("1e39".to_string()),
        "[a-c]{1,3}",
        "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat().into_bytes())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_csv_reader_gives_a_table_or_an_error_for_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Table::from_reader(&bytes[..], Path::new("fuzz.csv"), None);
        let _ = Table::from_reader(&bytes[..], Path::new("fuzz.csv"), Some("a"));
    }

    #[test]
    fn the_csv_reader_gives_a_table_or_an_error_for_csv_like_text(bytes in csvish()) {
        if let Ok(t) = Table::from_reader(&bytes[..], Path::new("fuzz.csv"), None) {
            // A table that reads is consistent.
            prop_assert_eq!(t.x.nrows(), t.y.len());
            prop_assert_eq!(t.codes.nrows(), t.y.len());
            prop_assert!(t.x.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn valid_tables_round_trip_exactly(
        rows in proptest::collection::vec(
            (proptest::collection::vec(-1e30f32..1e30, 3), 0usize..3, "[a-z ]{0,6}"), 1..40),
    ) {
        let mut text = String::from("x,y,label,z,colour\n");
        for (v, l, c) in &rows {
            let colour = if c.is_empty() { "\"\"".to_string() } else { format!("\"{c}\"") };
            text.push_str(&format!("{},{},c{l},{},{colour}\n", v[0], v[1], v[2]));
        }
        let t = Table::from_reader(text.as_bytes(), Path::new("in.csv"), Some("label")).unwrap();
        for (r, (v, l, _)) in rows.iter().enumerate() {
            prop_assert_eq!(t.x[[r, 0]].to_bits(), v[0].to_bits());
            prop_assert_eq!(t.x[[r, 2]].to_bits(), v[2].to_bits());
            prop_assert_eq!(&t.y[r], &format!("c{l}"));
        }
        // Written back with every row an input row: the same fields, each exactly as read (the
        // writer quotes only where CSV needs it).
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.csv");
        let origin: Vec<Origin> = (0..rows.len()).map(Origin::Real).collect();
        t.write_resampled(&out, t.x.view(), t.codes.view(), &t.y, &origin, None).unwrap();
        let fields = |bytes: &[u8]| -> Vec<Vec<String>> {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(bytes)
                .records()
                .map(|r| r.unwrap().iter().map(str::to_string).collect())
                .collect()
        };
        prop_assert_eq!(fields(&std::fs::read(&out).unwrap()), fields(text.as_bytes()));
    }

    #[test]
    fn the_npy_reader_gives_a_table_or_an_error_for_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        keep_magic in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let mut data = if keep_magic { b"\x93NUMPY\x01\x00".to_vec() } else { Vec::new() };
        data.extend(&bytes);
        std::fs::write(&path, &data).unwrap();
        let _ = Table::read_npy(&path, None);
    }
}

/// A `.npy` version 1.0 file: a header claiming `shape` of `descr`, then `data` bytes.
fn npy(descr: &str, shape: (u64, u64), data: usize) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}",
        shape.0, shape.1
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, data));
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn an_npy_header_claiming_any_shape_is_read_or_refused_without_allocating_the_claim(
        rows in prop_oneof![0u64..10, 1u64 << 20..1u64 << 40],
        cols in 0u64..5,
        data in 0usize..200,
        wide in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        std::fs::write(&path, npy(if wide { "<f8" } else { "<f4" }, (rows, cols), data)).unwrap();
        let r = Table::read_npy(&path, None);
        let item = if wide { 8 } else { 4 };
        if u128::from(rows) * u128::from(cols) * item > data as u128 {
            prop_assert!(r.is_err());
        }
    }
}

/// The bytes of a small saved model: (metadata JSON, safetensors).
fn model_bytes() -> (Vec<u8>, Vec<u8>) {
    let x = Array2::from_shape_fn((30, 3), |(i, j)| ((i * 7 + j) % 5) as f32);
    let cfg = VaeConfig {
        hidden: vec![4],
        latent: smrt::Latent::Count(2),
        epochs: 2,
        min_steps: 0,
        ..VaeConfig::default()
    };
    let vae = Vae::fit(x.view(), &cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    let info = smrt::vae::ModelInfo {
        class: "a".into(),
        features: vec!["p".into(), "q".into(), "r".into()],
    };
    vae.save(&base, &info).unwrap();
    let (w, m) = smrt::vae::model_files(&base);
    (std::fs::read(m).unwrap(), std::fs::read(w).unwrap())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn altered_or_truncated_models_give_a_model_or_an_error(
        cut_meta in any::<prop::sample::Index>(),
        cut_weights in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        which in 0u8..4,
    ) {
        let (mut meta, mut weights) = model_bytes();
        match which {
            0 => meta.truncate(cut_meta.index(meta.len())),
            1 => weights.truncate(cut_weights.index(weights.len())),
            _ => {
                let target = if which == 2 { &mut meta } else { &mut weights };
                for (at, byte) in &flips {
                    let i = at.index(target.len());
                    target[i] = *byte;
                }
            }
        }
        let _ = Vae::from_bytes(&meta, &weights);
    }
}

#[test]
fn a_model_that_claims_huge_layers_is_refused_before_any_large_allocation() {
    let (meta, weights) = model_bytes();
    let text = String::from_utf8(meta).unwrap();
    // Every layer width becomes 10^12: the weights file cannot hold that.
    let huge = regex_lite_replace(&text, "\"fan_out\": ", "1000000000000");
    let e = Vae::from_bytes(huge.as_bytes(), &weights).unwrap_err();
    assert!(
        e.to_string().contains("<weights>") || e.to_string().contains("<metadata>"),
        "{e}"
    );
}

/// `text` with the number after each `key` replaced by `value`.
fn regex_lite_replace(text: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        out.push_str(value);
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The `smrt` command on `args` with a file `input`: it must exit 0 or 2 (a clear error), never
/// panic (101) or crash.
fn clean_exit(args: &[&str]) -> Result<(), TestCaseError> {
    let out = Command::new(env!("CARGO_BIN_EXE_smrt"))
        .args(args)
        .env("SMRT_BACKEND", "cpu")
        .output()
        .unwrap();
    let code = out.status.code();
    let err = String::from_utf8_lossy(&out.stderr);
    prop_assert!(matches!(code, Some(0) | Some(2)), "exit {code:?}: {err}");
    if code == Some(2) {
        prop_assert_eq!(err.lines().count(), 1, "one line: {}", err);
    }
    Ok(())
}

fn small_input(dir: &Path) -> String {
    let path = dir.join("in.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..30 {
        s.push_str(&format!(
            "{},{},{}\n",
            i % 7,
            i % 3,
            if i < 24 { "x" } else { "y" }
        ));
    }
    std::fs::write(&path, s).unwrap();
    path.to_str().unwrap().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_strategy_text_is_parsed_or_refused(text in "[a-z=,:0-9. -]{0,24}") {
        let dir = tempfile::tempdir().unwrap();
        let input = small_input(dir.path());
        let out = dir.path().join("o.csv");
        clean_exit(&["balance", "--input", &input, "--output", out.to_str().unwrap(),
            "--method", "random-over", "--strategy", &text, "--quiet"])?;
    }

    #[test]
    fn any_config_file_is_read_or_refused(text in "([a-z-]{1,12} = (\"[a-z-]{0,8}\"|[0-9.e-]{1,6}|\\[[0-9, ]{0,8}\\]|true)\n){0,4}") {
        let dir = tempfile::tempdir().unwrap();
        let input = small_input(dir.path());
        let config = dir.path().join("c.toml");
        std::fs::write(&config, &text).unwrap();
        let out = dir.path().join("o.csv");
        clean_exit(&["balance", "--input", &input, "--output", out.to_str().unwrap(),
            "--config", config.to_str().unwrap(), "--epochs", "2", "--min-steps", "0", "--quiet"])?;
    }
}

/// Each balancer on `x`, `y`: a result without NaN, or an error; never a panic.
fn every_balancer(x: &Array2<f32>, y: &[u8]) {
    let smrt = Smrt::<u8>::builder()
        .epochs(3)
        .min_steps(0)
        .device(Device::Cpu)
        .build()
        .unwrap();
    let balancers: Vec<(&str, Box<dyn Balancer<u8>>)> = vec![
        ("smrt", Box::new(smrt)),
        ("smote", Box::new(Smote::new().device(Device::Cpu))),
        ("random-over", Box::new(RandomOverSampler::new())),
    ];
    for (name, b) in balancers {
        if let Ok(out) = b.fit_resample(x.view(), y) {
            assert!(
                out.x.iter().all(|v| v.is_finite()),
                "{name} on {}x{} (first {:?}): non-finite rows",
                x.nrows(),
                x.ncols(),
                x[[0, 0]]
            );
            assert!(out.y.len() >= y.len(), "{name}");
        }
    }
}

#[test]
fn balancers_cope_with_degenerate_data() {
    let y: Vec<u8> = (0..40).map(|i| u8::from(i >= 34)).collect();
    // Every row equal.
    every_balancer(&Array2::from_elem((40, 3), 2.5), &y);
    // Values near f32's limits.
    every_balancer(
        &Array2::from_shape_fn(
            (40, 2),
            |(i, j)| if (i + j) % 2 == 0 { 3e38 } else { -3e38 },
        ),
        &y,
    );
    // One feature.
    every_balancer(&Array2::from_shape_fn((40, 1), |(i, _)| i as f32), &y);
    // 2,000 features.
    every_balancer(
        &Array2::from_shape_fn((40, 2000), |(i, j)| ((i * 31 + j * 7) % 13) as f32),
        &y,
    );
    // Two rows, one per class: nothing to grow.
    every_balancer(&ndarray::array![[0.0f32], [1.0]], &[0, 1]);
    // A class of one row: a clear error for the methods that need two.
    let e = Smote::new()
        .device(Device::Cpu)
        .fit_resample(ndarray::array![[0.0f32], [1.0], [2.0]].view(), &[0u8, 0, 1])
        .unwrap_err();
    assert!(e.to_string().contains("at least 2 are needed"), "{e}");
}

#[test]
fn a_class_of_one_row_grows_from_a_saved_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = small_input(dir.path());
    let models = dir.path().join("models");
    let fit = Command::new(env!("CARGO_BIN_EXE_smrt"))
        .args([
            "fit",
            "--input",
            &input,
            "--out",
            models.to_str().unwrap(),
            "--epochs",
            "3",
        ])
        .args(["--min-steps", "0", "--quiet"])
        .env("SMRT_BACKEND", "cpu")
        .output()
        .unwrap();
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    // The same columns with one row of class y.
    let one = dir.path().join("one.csv");
    std::fs::write(&one, "a,b,label\n1,2,x\n3,1,x\n0,0,x\n5,2,y\n").unwrap();
    let out = dir.path().join("out.csv");
    let r = Command::new(env!("CARGO_BIN_EXE_smrt"))
        .args([
            "balance",
            "--input",
            one.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .args(["--models", models.to_str().unwrap(), "--quiet"])
        .env("SMRT_BACKEND", "cpu")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.ends_with(",y")).count(),
        3,
        "{text}"
    );
}
