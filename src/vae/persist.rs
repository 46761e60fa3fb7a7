//! Saving and loading a fitted VAE: weights in safetensors, everything else in JSON.
//!
//! `NAME.safetensors` holds one f32 tensor per parameter, named and shaped as PyTorch's
//! `nn.Linear` keeps them (`encoder.0.weight` is `out x in`, `encoder.0.bias` is `out`), so
//! `torch.nn.Sequential(...).load_state_dict(safetensors.torch.load_file(...))` reads them.
//! A learned output variance is the tensor `output.logvar` (one value per modelled column).
//! `NAME.json` holds the format version, the settings, the scaler, the per-column facts (range,
//! whole numbers, point masses, which columns are modelled), the layer shapes and activations, the
//! class label and feature names, and the training history. A file written before point masses
//! were kept names none, and draws as it did. Version 2 files (before two-valued columns had
//! heads of their own) load and draw as they did; version 1 files (before per-column facts and
//! the learned variance) are refused with a message naming their version.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::{Activation, Columns, Dense, Heads, History, Vae, VaeConfig};
use crate::error::{Error, Result};
use crate::scale::Scaler;
use crate::table::write_atomic;

/// The format name in every metadata file.
const FORMAT: &str = "smrt-vae";
/// The version this build writes.
pub const MODEL_VERSION: u32 = 3;
/// The oldest version this build reads.
pub const OLDEST_MODEL_VERSION: u32 = 2;

/// Whether this build reads files of format `version`.
pub(crate) fn reads_version(version: u64) -> bool {
    (u64::from(OLDEST_MODEL_VERSION)..=u64::from(MODEL_VERSION)).contains(&version)
}

/// The versions this build reads, for error messages.
pub(crate) fn versions_read() -> String {
    format!("versions {OLDEST_MODEL_VERSION} to {MODEL_VERSION}")
}

/// What a saved model says about the data it was fitted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The class the model generates, as written in the data.
    pub class: String,
    /// The feature columns, in the model's order: the numeric columns, then the categorical
    /// columns of its heads ([`Vae::heads`]).
    pub features: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct LayerMeta {
    fan_in: usize,
    fan_out: usize,
    activation: Activation,
}

#[derive(Serialize, Deserialize)]
struct Metadata {
    format: String,
    version: u32,
    info: ModelInfo,
    config: VaeConfig,
    scaler: Scaler,
    columns: Columns,
    /// The categorical columns (absent for models of numeric columns).
    #[serde(default, skip_serializing_if = "Heads::is_empty")]
    heads: Heads,
    /// The mode `Generation::Auto` draws with (absent: the prior).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preferred: Option<super::Generation>,
    latent: usize,
    encoder: Vec<LayerMeta>,
    decoder: Vec<LayerMeta>,
    history: History,
}

/// The two files of a saved model at `base` (any extension of `base` is replaced).
pub fn model_files(base: &Path) -> (PathBuf, PathBuf) {
    (
        base.with_extension("safetensors"),
        base.with_extension("json"),
    )
}

fn layers_meta(layers: &[Dense]) -> Vec<LayerMeta> {
    layers
        .iter()
        .map(|d| LayerMeta {
            fan_in: d.w.nrows(),
            fan_out: d.w.ncols(),
            activation: d.activation,
        })
        .collect()
}

impl Vae {
    /// Saves the model as `base.safetensors` and `base.json` (each written to a temporary file
    /// and renamed when complete).
    ///
    /// ```
    /// use smrt::{vae::ModelInfo, Vae, VaeConfig};
    /// let x = ndarray::Array2::from_shape_fn((20, 2), |(i, j)| (i * 2 + j) as f32);
    /// let vae = Vae::fit_on(&smrt::Device::Cpu, x.view(), &VaeConfig { epochs: 5, ..Default::default() })?;
    /// let dir = tempfile::tempdir().unwrap();
    /// let info = ModelInfo { class: "rare".into(), features: vec!["a".into(), "b".into()] };
    /// vae.save(&dir.path().join("rare"), &info)?;
    /// let (back, back_info) = Vae::load(&dir.path().join("rare"))?;
    /// assert_eq!(back, vae);
    /// assert_eq!(back_info, info);
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn save(&self, base: &Path, info: &ModelInfo) -> Result<()> {
        let columns = self.features() + self.heads.len();
        if info.features.len() != columns {
            return Err(Error::ShapeMismatch {
                what: "feature names",
                expected: columns,
                got: info.features.len(),
            });
        }
        let (weights_path, meta_path) = model_files(base);
        let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (stack, layers) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            for (i, d) in layers.iter().enumerate() {
                // PyTorch's layout: out x in.
                let wt = d.w.t().as_standard_layout().into_owned();
                named.push((
                    format!("{stack}.{i}.weight"),
                    vec![d.w.ncols(), d.w.nrows()],
                    bytemuck::cast_slice(wt.as_slice().expect("standard layout")).to_vec(),
                ));
                named.push((
                    format!("{stack}.{i}.bias"),
                    vec![d.b.len()],
                    bytemuck::cast_slice(d.b.as_slice().expect("contiguous")).to_vec(),
                ));
            }
        }
        if let Some(s) = &self.output_logvar {
            named.push((
                "output.logvar".into(),
                vec![s.len()],
                bytemuck::cast_slice(s.as_slice().expect("contiguous")).to_vec(),
            ));
        }
        let views = named
            .iter()
            .map(|(name, shape, bytes)| {
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| model_error(&weights_path, e))?;
        let bytes =
            safetensors::serialize(views, None).map_err(|e| model_error(&weights_path, e))?;
        let meta = Metadata {
            format: FORMAT.into(),
            version: MODEL_VERSION,
            info: info.clone(),
            config: self.config.clone(),
            scaler: self.scaler.clone(),
            columns: self.columns.clone(),
            heads: self.heads.clone(),
            preferred: self.preferred,
            latent: self.latent,
            encoder: layers_meta(&self.encoder),
            decoder: layers_meta(&self.decoder),
            history: self.history.clone(),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| model_error(&meta_path, e))?;
        write_atomic(&weights_path, |w| Ok(w.write_all(&bytes)?))?;
        write_atomic(&meta_path, |w| Ok(w.write_all(&json)?))
    }

    /// Loads a model saved by [`Vae::save`], checking the format version and that every shape
    /// agrees with the metadata.
    pub fn load(base: &Path) -> Result<(Vae, ModelInfo)> {
        let (weights_path, meta_path) = model_files(base);
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let (json, bytes) = (read(&meta_path)?, read(&weights_path)?);
        Vae::parse(&json, &bytes, &meta_path, &weights_path)
    }

    /// [`Vae::load`] from the bytes of the two files: the metadata (JSON) and the weights
    /// (safetensors). Any bytes give a model or an error, never a panic, and nothing is
    /// allocated for a tensor before the file is found to hold it.
    pub fn from_bytes(metadata: &[u8], weights: &[u8]) -> Result<(Vae, ModelInfo)> {
        Vae::parse(
            metadata,
            weights,
            Path::new("<metadata>"),
            Path::new("<weights>"),
        )
    }

    fn parse(
        json: &[u8],
        bytes: &[u8],
        meta_path: &Path,
        weights_path: &Path,
    ) -> Result<(Vae, ModelInfo)> {
        let probe: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| model_error(meta_path, e))?;
        if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(model_error(
                meta_path,
                "not an smrt model (no \"format\": \"smrt-vae\")",
            ));
        }
        let version = probe.get("version").and_then(|v| v.as_u64());
        if !version.is_some_and(reads_version) {
            return Err(model_error(
                meta_path,
                format!(
                    "format version {}; this smrt reads {}",
                    version.map_or("(missing)".into(), |v| v.to_string()),
                    versions_read()
                ),
            ));
        }
        let meta: Metadata =
            serde_json::from_value(probe).map_err(|e| model_error(meta_path, e))?;
        meta.config
            .validate()
            .map_err(|e| model_error(meta_path, e))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| model_error(weights_path, e))?;
        let load_stack = |stack: &str, metas: &[LayerMeta]| -> Result<Vec<Dense>> {
            metas
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let w = tensor(
                        &tensors,
                        &format!("{stack}.{i}.weight"),
                        &[m.fan_out, m.fan_in],
                    )
                    .map_err(|r| model_error(weights_path, r))?;
                    let b = tensor(&tensors, &format!("{stack}.{i}.bias"), &[m.fan_out])
                        .map_err(|r| model_error(weights_path, r))?;
                    let w = Array2::from_shape_vec((m.fan_out, m.fan_in), w)
                        .expect("checked shape")
                        .reversed_axes()
                        .as_standard_layout()
                        .into_owned();
                    Ok(Dense {
                        w,
                        b: Array1::from(b),
                        activation: m.activation,
                    })
                })
                .collect()
        };
        let encoder = load_stack("encoder", &meta.encoder)?;
        let decoder = load_stack("decoder", &meta.decoder)?;
        let numeric = meta.columns.modelled().len();
        let features = numeric + meta.heads.with_binary(meta.columns.binary().len()).width();
        let chain = |layers: &[Dense], first: usize, last: usize| {
            !layers.is_empty()
                && layers[0].w.nrows() == first
                && layers.windows(2).all(|p| p[0].w.ncols() == p[1].w.nrows())
                && layers[layers.len() - 1].w.ncols() == last
        };
        if !chain(&encoder, features, 2 * meta.latent)
            || !chain(&decoder, meta.latent, features)
            || meta.scaler.len() != numeric
            || meta.columns.len() + meta.heads.len() != meta.info.features.len()
            || !meta.columns.is_consistent()
        {
            return Err(model_error(
                meta_path,
                format!(
                    "layer shapes do not chain from {features} modelled of {} features through latent {} and back",
                    meta.info.features.len(),
                    meta.latent
                ),
            ));
        }
        let output_logvar = match meta.config.likelihood {
            super::Likelihood::GaussianLearned => Some(Array1::from(
                tensor(&tensors, "output.logvar", &[numeric])
                    .map_err(|r| model_error(weights_path, r))?,
            )),
            _ => None,
        };
        let vae = Vae {
            config: meta.config,
            scaler: meta.scaler,
            encoder,
            decoder,
            latent: meta.latent,
            history: meta.history,
            columns: meta.columns,
            output_logvar,
            heads: meta.heads,
            preferred: meta.preferred,
        };
        Ok((vae, meta.info))
    }
}

/// The f32 values of tensor `name`, which must have `shape`.
fn tensor(
    t: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> std::result::Result<Vec<f32>, String> {
    let v = t
        .tensor(name)
        .map_err(|_| format!("tensor {name} is missing"))?;
    if v.dtype() != Dtype::F32 {
        return Err(format!("tensor {name} is {:?}, not F32", v.dtype()));
    }
    if v.shape() != shape {
        return Err(format!(
            "tensor {name} has shape {:?}; the metadata says {shape:?}",
            v.shape()
        ));
    }
    Ok(bytemuck::pod_collect_to_vec(v.data()))
}

fn model_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}
