//! A directory of saved models, one per class: what `smrt fit` and `smrt balance --save-models`
//! write and `smrt generate` and `smrt balance --models` read.
//!
//! `smrt-models.json` names the label column, the feature columns, the categories of the
//! categorical ones, the sampling settings the models were fitted with and, for each class, the
//! base name of its model files
//! (`class-0.safetensors` and `class-0.json`, see [`Vae::save`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::table::write_atomic;
use crate::vae::{reads_version, versions_read, ModelInfo, Sampling, Vae, MODEL_VERSION};

/// The index file of a model directory.
pub const INDEX: &str = "smrt-models.json";
const FORMAT: &str = "smrt-models";

#[derive(Serialize, Deserialize)]
struct Index {
    format: String,
    version: u32,
    label: String,
    features: Vec<String>,
    /// The categories of each categorical column (absent when there are none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    categories: BTreeMap<String, Vec<String>>,
    /// Absent from directories written before it was recorded: those drew from the prior.
    #[serde(default)]
    sampling: Sampling,
    classes: BTreeMap<String, String>,
}

/// The models of one data set, by class label.
#[derive(Debug, Clone)]
pub struct SavedModels {
    /// The label column's name.
    pub label: String,
    /// The feature columns, in file order.
    pub features: Vec<String>,
    /// The categorical feature columns by name, each with the text of its categories: code `c`
    /// of the models is `categories[name][c]`.
    pub categories: BTreeMap<String, Vec<String>>,
    /// How rows are drawn from the models unless a caller says otherwise.
    pub sampling: Sampling,
    /// One model per class.
    pub models: BTreeMap<String, Vae>,
}

impl SavedModels {
    /// Writes every model and the index into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut classes = BTreeMap::new();
        for (i, (class, vae)) in self.models.iter().enumerate() {
            let stem = format!("class-{i}");
            let info = ModelInfo {
                class: class.clone(),
                features: self.model_features(),
            };
            vae.save(&dir.join(&stem), &info)?;
            classes.insert(class.clone(), stem);
        }
        let index = Index {
            format: FORMAT.into(),
            version: MODEL_VERSION,
            label: self.label.clone(),
            features: self.features.clone(),
            categories: self.categories.clone(),
            sampling: self.sampling,
            classes,
        };
        let path = dir.join(INDEX);
        let json = serde_json::to_vec_pretty(&index).map_err(|e| model_error(&path, e))?;
        write_atomic(&path, |w| Ok(w.write_all(&json)?))
    }

    /// Reads a directory written by [`SavedModels::save`], checking that every model was fitted
    /// on the same features as the index says.
    pub fn load(dir: &Path) -> Result<SavedModels> {
        let path = dir.join(INDEX);
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| model_error(&path, e))?;
        if index.format != FORMAT || !reads_version(u64::from(index.version)) {
            return Err(model_error(
                &path,
                format!(
                    "format {} version {}; this smrt reads {FORMAT} {}",
                    index.format,
                    index.version,
                    versions_read()
                ),
            ));
        }
        let mut saved = SavedModels {
            label: index.label,
            features: index.features,
            categories: index.categories,
            sampling: index.sampling,
            models: BTreeMap::new(),
        };
        let expected = saved.model_features();
        for (class, stem) in &index.classes {
            let (vae, info) = Vae::load(&dir.join(stem))?;
            if info.class != *class || info.features != expected {
                return Err(model_error(
                    &dir.join(stem),
                    format!(
                        "was fitted for class {:?} on other columns than the index says",
                        info.class
                    ),
                ));
            }
            saved.check_heads(&dir.join(stem), &vae)?;
            saved.models.insert(class.clone(), vae);
        }
        Ok(saved)
    }

    /// Checks that `vae`'s categorical heads are this index's categorical columns, in file
    /// order, and draw only categories the index names.
    fn check_heads(&self, path: &Path, vae: &Vae) -> Result<()> {
        let names: Vec<&String> = self
            .features
            .iter()
            .filter(|f| self.categories.contains_key(*f))
            .collect();
        let seen = vae.heads().seen();
        if seen.len() != names.len() {
            return Err(model_error(
                path,
                format!(
                    "has {} categorical columns; the index names {}",
                    seen.len(),
                    names.len()
                ),
            ));
        }
        for (name, codes) in names.iter().zip(seen) {
            let known = self.categories[*name].len();
            if let Some(c) = codes.iter().find(|&&c| c as usize >= known) {
                return Err(model_error(
                    path,
                    format!("draws category {c} of column {name:?}, which has {known}"),
                ));
            }
        }
        Ok(())
    }

    /// The feature names in the models' order: the numeric columns, then the categorical ones
    /// (each group in file order).
    pub fn model_features(&self) -> Vec<String> {
        let (categorical, numeric): (Vec<&String>, Vec<&String>) = self
            .features
            .iter()
            .partition(|f| self.categories.contains_key(*f));
        numeric.into_iter().chain(categorical).cloned().collect()
    }

    /// Checks that these models fit a table with `label` and `features`.
    pub fn check_columns(&self, dir: &Path, label: &str, features: &[String]) -> Result<()> {
        if self.features != features || self.label != label {
            return Err(model_error(
                dir,
                format!(
                    "the models were fitted on columns {:?} with label {:?}; this data has {:?} with label {:?}",
                    self.features, self.label, features, label
                ),
            ));
        }
        Ok(())
    }
}

fn model_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Model {
        path: PathBuf::from(path),
        reason: reason.to_string(),
    }
}
