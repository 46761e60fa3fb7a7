//! Saved models: round trip, and clear errors for files that do not fit.

use std::path::Path;

use smrt::vae::{model_files, ModelInfo};
use smrt::{Device, Error, Vae, VaeConfig};

fn fitted() -> (Vae, ModelInfo) {
    let x = ndarray::Array2::from_shape_fn((30, 3), |(i, j)| ((i * 5 + j * 3) % 7) as f32);
    let cfg = VaeConfig {
        hidden: vec![6, 4],
        epochs: 5,
        ..VaeConfig::default()
    };
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &cfg).unwrap();
    let info = ModelInfo {
        class: "rare".into(),
        features: vec!["a".into(), "b".into(), "c".into()],
    };
    (vae, info)
}

fn edit_json(base: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let (_, meta) = model_files(base);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&meta, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn a_saved_model_generates_the_same_rows() {
    let (vae, info) = fitted();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    vae.save(&base, &info).unwrap();
    let (back, back_info) = Vae::load(&base).unwrap();
    assert_eq!(back_info, info);
    assert_eq!(back.history(), vae.history());
    assert_eq!(
        back.generate_on(&Device::Cpu, 50, 7).unwrap(),
        vae.generate_on(&Device::Cpu, 50, 7).unwrap()
    );
    // PyTorch's layout in the file: encoder.0.weight is out x in.
    let bytes = std::fs::read(model_files(&base).0).unwrap();
    let t = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(t.tensor("encoder.0.weight").unwrap().shape(), &[6, 3]);
    assert_eq!(t.tensor("decoder.2.bias").unwrap().shape(), &[3]);
}

#[test]
fn files_that_do_not_fit_are_clear_errors() {
    let (vae, info) = fitted();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    let fresh = || vae.save(&base, &info).unwrap();
    let message = |needle: &str| {
        let err = Vae::load(&base).unwrap_err();
        assert!(matches!(err, Error::Model { .. }), "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    };

    fresh();
    edit_json(&base, |v| v["version"] = 99.into());
    message("format version 99; this smrt reads versions 2 to 3");

    // A file of the first format (no per-column facts) names its version.
    fresh();
    edit_json(&base, |v| {
        v["version"] = 1.into();
        v.as_object_mut().unwrap().remove("columns");
    });
    message("format version 1; this smrt reads versions 2 to 3");

    fresh();
    edit_json(&base, |v| v["format"] = "something-else".into());
    message("not an smrt model");

    fresh();
    edit_json(&base, |v| v["encoder"][0]["fan_out"] = 7.into());
    message("encoder.0.weight has shape [6, 3]; the metadata says [7, 3]");

    fresh();
    edit_json(&base, |v| v["latent"] = 5.into());
    message("do not chain");

    fresh();
    std::fs::write(model_files(&base).0, b"not safetensors").unwrap();
    let err = Vae::load(&base).unwrap_err();
    assert!(matches!(err, Error::Model { .. }), "{err}");

    std::fs::remove_file(model_files(&base).1).unwrap();
    assert!(matches!(Vae::load(&base), Err(Error::Io { .. })));

    // Feature names must match the model.
    let short = ModelInfo {
        features: vec!["a".into()],
        ..info.clone()
    };
    assert!(vae.save(&base, &short).is_err());
}

#[test]
fn learned_variance_and_column_facts_round_trip() {
    // Column 1 is constant, column 0 holds whole numbers.
    let x = ndarray::Array2::from_shape_fn((30, 3), |(i, j)| match j {
        0 => (i % 4) as f32,
        1 => 2.5,
        _ => (i as f32 * 0.37).sin(),
    });
    let cfg = VaeConfig {
        epochs: 5,
        min_steps: 0,
        likelihood: smrt::Likelihood::GaussianLearned,
        ..VaeConfig::default()
    };
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &cfg).unwrap();
    assert_eq!(vae.columns().modelled(), &[0, 2]);
    assert_eq!(vae.output_logvar().map(|s| s.len()), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    let info = ModelInfo {
        class: "rare".into(),
        features: vec!["a".into(), "b".into(), "c".into()],
    };
    vae.save(&base, &info).unwrap();
    let (back, _) = Vae::load(&base).unwrap();
    assert_eq!(back, vae);
    assert_eq!(
        back.generate_on(&Device::Cpu, 20, 3).unwrap(),
        vae.generate_on(&Device::Cpu, 20, 3).unwrap()
    );
}

#[test]
fn two_valued_columns_round_trip_and_version_2_files_still_load() {
    // Column 1 holds two values: a yes/no head of its own.
    let x = ndarray::Array2::from_shape_fn((30, 3), |(i, j)| match j {
        0 => (i as f32 * 0.37).sin(),
        1 => [0.0, 4.0][i % 3 / 2],
        _ => (i % 5) as f32,
    });
    let cfg = VaeConfig {
        epochs: 5,
        min_steps: 0,
        ..VaeConfig::default()
    };
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &cfg).unwrap();
    assert_eq!(vae.columns().binary(), &[1]);
    let info = ModelInfo {
        class: "rare".into(),
        features: vec!["a".into(), "b".into(), "c".into()],
    };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    vae.save(&base, &info).unwrap();
    let (back, _) = Vae::load(&base).unwrap();
    assert_eq!(back, vae);
    let rows = back.generate_on(&Device::Cpu, 40, 3).unwrap();
    assert_eq!(rows, vae.generate_on(&Device::Cpu, 40, 3).unwrap());
    assert!(rows.column(1).iter().all(|&v| v == 0.0 || v == 4.0));

    // A version 2 file (written before two-valued columns had heads, so it names none) loads
    // and draws as it did.
    let (old, _) = fitted();
    old.save(&base, &info).unwrap();
    edit_json(&base, |v| {
        assert!(v["columns"].get("binary").is_none());
        v["version"] = 2.into();
    });
    let (back, _) = Vae::load(&base).unwrap();
    assert_eq!(back, old);
    // A file that names a column both modelled and two-valued is refused.
    vae.save(&base, &info).unwrap();
    edit_json(&base, |v| v["columns"]["binary"] = serde_json::json!([0]));
    assert!(matches!(Vae::load(&base), Err(Error::Model { .. })));
    // And so is one that names a column twice (the shapes still agree: two modelled columns).
    vae.save(&base, &info).unwrap();
    edit_json(&base, |v| {
        v["columns"]["modelled"] = serde_json::json!([0, 0])
    });
    assert!(matches!(Vae::load(&base), Err(Error::Model { .. })));
}

/// Saves `vae` at `base` with the column names `features`, loads it back, checks that it
/// round-trips and draws as before, and returns `n` of its rows.
fn saved_and_drawn(
    vae: &Vae,
    base: &std::path::Path,
    features: &[&str],
    n: usize,
) -> ndarray::Array2<f32> {
    let (_, info) = fitted();
    let info = ModelInfo {
        features: features.iter().map(|f| f.to_string()).collect(),
        ..info
    };
    vae.save(base, &info).unwrap();
    let (back, _) = Vae::load(base).unwrap();
    assert_eq!(&back, vae);
    let rows = back.generate_on(&Device::Cpu, n, 3).unwrap();
    assert_eq!(rows, vae.generate_on(&Device::Cpu, n, 3).unwrap());
    rows
}

#[test]
fn a_point_mass_round_trips_and_files_without_one_draw_as_before() {
    // Column 1 is 0.5 in two rows of three, spread elsewhere.
    let x = ndarray::Array2::from_shape_fn((30, 2), |(i, j)| match (j, i % 3) {
        (0, _) => (i as f32 * 0.37).sin(),
        (_, 2) => 1.0 + i as f32 / 17.0,
        _ => 0.5,
    });
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &VaeConfig::default()).unwrap();
    assert!(vae.columns().stats()[1].point.is_some());
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    let rows = saved_and_drawn(&vae, &base, &["a", "b"], 400);
    let at_point = |r: &ndarray::Array2<f32>| r.column(1).iter().filter(|&&v| v == 0.5).count();
    assert!(
        at_point(&rows) > 200,
        "{} of 400 at the point",
        at_point(&rows)
    );
    // A file written before point masses were kept names none, loads, and draws the Gaussian's
    // values: the same rows but for the ones set to the point.
    edit_json(&base, |v| {
        for stats in v["columns"]["stats"].as_array_mut().unwrap() {
            stats.as_object_mut().unwrap().remove("point");
        }
    });
    let (old, _) = Vae::load(&base).unwrap();
    assert!(old.columns().stats().iter().all(|s| s.point.is_none()));
    let before = old.generate_on(&Device::Cpu, 400, 3).unwrap();
    assert_eq!(at_point(&before), 0);
    for (a, b) in rows.rows().into_iter().zip(before.rows()) {
        assert_eq!(a[0], b[0]);
        assert!(a[1] == b[1] || a[1] == 0.5, "{} drawn as {}", b[1], a[1]);
    }
}

#[test]
fn relations_round_trip_and_files_without_them_draw_as_before() {
    // Column 2 is the sum of columns 0 and 1 in every row.
    let x = ndarray::Array2::from_shape_fn((30, 3), |(i, j)| {
        let (a, b) = ((i as f32 * 0.37).sin(), (i as f32 * 0.91).cos());
        [a, b, a + b][j]
    });
    let vae = Vae::fit_on(&Device::Cpu, x.view(), &VaeConfig::default()).unwrap();
    assert_eq!(vae.columns().relations().map(|r| r.len()), Some(1));
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("m");
    let rows = saved_and_drawn(&vae, &base, &["a", "b", "sum"], 200);
    let broken = |r: &ndarray::Array2<f32>| {
        r.rows()
            .into_iter()
            .map(|r| (r[2] - r[0] - r[1]).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(broken(&rows) < 1e-4, "{}", broken(&rows));
    // A file written before relations were kept names none, loads, and draws the decoder's
    // rows as they come, which break the sum.
    edit_json(&base, |v| {
        v["columns"].as_object_mut().unwrap().remove("relations");
    });
    let (old, _) = Vae::load(&base).unwrap();
    assert!(old.columns().relations().is_none());
    assert!(broken(&old.generate_on(&Device::Cpu, 200, 3).unwrap()) > 1e-2);
    // Relations over another number of columns than the model's are refused.
    saved_and_drawn(&vae, &base, &["a", "b", "sum"], 1);
    edit_json(&base, |v| {
        let mean = v["columns"]["relations"]["mean"].as_array_mut().unwrap();
        mean.pop();
    });
    assert!(matches!(Vae::load(&base), Err(smrt::Error::Model { .. })));
}

#[test]
fn an_index_that_does_not_match_the_categorical_heads_is_refused() {
    use smrt::models::SavedModels;
    let x = ndarray::Array2::from_shape_fn((20, 1), |(i, _)| i as f32);
    let codes = ndarray::Array2::from_shape_fn((20, 1), |(i, _)| (i % 2) as u32);
    let config = smrt::VaeConfig {
        epochs: 2,
        min_steps: 0,
        ..Default::default()
    };
    let vae = smrt::Vae::fit_mixed_on(&smrt::Device::Cpu, x.view(), codes.view(), &config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = SavedModels {
        label: "label".into(),
        features: vec!["x".into(), "c".into()],
        categories: [("c".to_string(), vec!["a".to_string(), "b".to_string()])].into(),
        sampling: smrt::Sampling::default(),
        models: [("rare".to_string(), vae)].into(),
    };
    saved.save(dir.path()).unwrap();
    assert_eq!(
        SavedModels::load(dir.path()).unwrap().categories,
        saved.categories
    );
    let index = dir.path().join(smrt::models::INDEX);
    let text = std::fs::read_to_string(&index).unwrap();
    // A dictionary shorter than the categories the model draws.
    std::fs::write(&index, text.replace("\"b\"", "").replace("\"a\",", "\"a\"")).unwrap();
    let err = SavedModels::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("draws category 1 of column \"c\""), "{err}");
    // No categorical columns named at all.
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc.as_object_mut().unwrap().remove("categories");
    std::fs::write(&index, doc.to_string()).unwrap();
    let err = SavedModels::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("has 1 categorical columns; the index names 0"),
        "{err}"
    );
}
