//! The samplers' settings from Python: strategies, kebab-case names, the device, and the
//! balancer a method and its options make.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};
use smrt::{
    Activation, Backend, Balancer, BiasInit, CategoryDraw, EarlyStopping, Generation, Init, Latent,
    Likelihood, Optimizer, RandomOverSampler, RandomUnderSampler, Scaling, Smote, Smrt, Strategy,
};

use crate::{value_error, Watch};

/// `'auto'`, `'not majority'`, `'minority'`, a float in (0, 1], or `{label code: count}`.
pub(crate) fn strategy(s: &Bound<'_, PyAny>) -> PyResult<Strategy<i64>> {
    if let Ok(name) = s.cast::<PyString>() {
        return match name.extract::<String>()?.as_str() {
            "auto" | "not majority" => Ok(Strategy::NotMajority),
            "minority" => Ok(Strategy::Minority),
            other => Err(PyValueError::new_err(format!(
                "sampling_strategy {other:?} is not one of 'auto', 'all', 'minority', 'majority', 'not minority', 'not majority', a float, a dict or a callable"
            ))),
        };
    }
    if s.is_instance_of::<PyFloat>() || s.is_instance_of::<PyInt>() {
        return Ok(Strategy::Ratio(s.extract::<f32>()?));
    }
    if let Ok(d) = s.cast::<PyDict>() {
        let mut targets = BTreeMap::new();
        for (k, v) in d.iter() {
            targets.insert(k.extract::<i64>()?, v.extract::<usize>()?);
        }
        return Ok(Strategy::Targets(targets));
    }
    Err(PyTypeError::new_err(
        "sampling_strategy must be a string, a float or a dict",
    ))
}

/// A kebab-case setting (`'residual'`, `'argmax'`) read as smrt reads it in TOML.
pub(crate) fn named<T: serde::de::DeserializeOwned>(
    key: &str,
    v: &Bound<'_, PyAny>,
) -> PyResult<T> {
    let text: String = v.extract()?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| PyValueError::new_err(format!("{key}: {text:?} is not a valid value")))
}

/// The device of `backend`; `auto` is resolved once per process (probing the adapters takes
/// tens of milliseconds, more than a SMOTE call on 100,000 rows).
pub(crate) fn device(options: &Bound<'_, PyDict>) -> PyResult<smrt::Device> {
    static AUTO: std::sync::OnceLock<smrt::Device> = std::sync::OnceLock::new();
    match backend(options)? {
        Backend::Auto => {
            if let Some(d) = AUTO.get() {
                return Ok(d.clone());
            }
            let d = smrt::Device::new(Backend::Auto).map_err(value_error)?;
            Ok(AUTO.get_or_init(|| d).clone())
        }
        other => smrt::Device::new(other).map_err(value_error),
    }
}

pub(crate) fn backend(options: &Bound<'_, PyDict>) -> PyResult<Backend> {
    match options.get_item("backend")? {
        None => Ok(Backend::Auto),
        Some(v) => match v.extract::<String>()?.as_str() {
            "auto" => Ok(Backend::Auto),
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            other => Err(PyValueError::new_err(format!(
                "backend {other:?} is not one of 'auto', 'gpu', 'cpu'"
            ))),
        },
    }
}

/// The SMRT balancer with every setting `options` names.
pub(crate) fn smrt_balancer(
    strategy: Strategy<i64>,
    seed: u64,
    options: &Bound<'_, PyDict>,
    watch: &Watch,
) -> PyResult<Smrt<i64>> {
    let epochs = Arc::clone(&watch.epochs);
    let mut b = Smrt::builder()
        .strategy(strategy)
        .seed(seed)
        .device(device(options)?)
        .stop_flag(Arc::clone(&watch.stop))
        .on_epoch(move |class, epoch, stats| {
            if let Ok(mut e) = epochs.lock() {
                e.push((*class, epoch, stats.total));
            }
        });
    // Models saved earlier, `(dir, {class name: label code})`: they draw as saved unless a
    // setting below says otherwise.
    if let Some(m) = options.get_item("models")?.filter(|m| !m.is_none()) {
        let (dir, codes): (std::path::PathBuf, BTreeMap<String, i64>) = m.extract()?;
        let saved = smrt::models::SavedModels::load(&dir).map_err(value_error)?;
        b = b.sampling(saved.sampling);
        for (name, vae) in saved.models {
            if let Some(&code) = codes.get(&name) {
                b = b.prefit(code, vae);
            }
        }
    }
    // Early stopping takes `patience` and `min_delta` together.
    let (mut patience, mut min_delta) = (None, None);
    for (key, v) in options.iter() {
        let key: String = key.extract()?;
        if v.is_none() {
            continue;
        }
        b = match key.as_str() {
            "backend" | "models" | "progress" => b,
            "patience" => {
                patience = Some(v.extract::<usize>()?);
                b
            }
            "min_delta" => {
                min_delta = Some(v.extract::<f32>()?);
                b
            }
            "activation" => b.activation(named::<Activation>(&key, &v)?),
            "init" => b.init(named::<Init>(&key, &v)?),
            "bias_init" => b.bias_init(named::<BiasInit>(&key, &v)?),
            "optimizer" => b.optimizer(named::<Optimizer>(&key, &v)?),
            "scaling" => b.scaling(named::<Scaling>(&key, &v)?),
            "l2" => b.l2(v.extract::<f32>()?),
            "dropout" => b.dropout(v.extract::<f32>()?),
            // 0 turns clipping off, as `--clip-norm 0` does.
            "clip_norm" => {
                let norm = v.extract::<f32>()?;
                b.clip_norm((norm != 0.0).then_some(norm))
            }
            "neighbors" => b.neighbors(v.extract()?),
            "hidden" => b.hidden(v.extract::<Vec<usize>>()?),
            "latent" => {
                if v.is_instance_of::<PyInt>() {
                    b.latent(Latent::Count(v.extract()?))
                } else {
                    b.latent(Latent::Fraction(v.extract()?))
                }
            }
            "epochs" => b.epochs(v.extract()?),
            "min_steps" => b.min_steps(v.extract()?),
            "max_steps" => b.max_steps(v.extract()?),
            "batch_size" => b.batch_size(v.extract()?),
            "learning_rate" => b.learning_rate(v.extract::<f32>()?),
            "beta" => b.beta(v.extract::<f32>()?),
            "likelihood" => b.likelihood(named::<Likelihood>(&key, &v)?),
            "generation" => b.generation(named::<Generation>(&key, &v)?),
            "temperature" => b.temperature(v.extract()?),
            "clip" => b.clip(v.extract()?),
            "category" => b.category(named::<CategoryDraw>(&key, &v)?),
            "fit_rows" => b.fit_rows(v.extract()?),
            "binary" => b.binary_columns(v.extract::<Vec<usize>>()?),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unknown SMRT setting {other:?}"
                )))
            }
        };
    }
    match (patience, min_delta) {
        (Some(patience), min_delta) => {
            b = b.early_stopping(Some(EarlyStopping {
                patience,
                min_delta: min_delta.unwrap_or(0.0),
            }));
        }
        (None, Some(_)) => {
            return Err(PyValueError::new_err(
                "min_delta is part of early stopping: give patience too",
            ))
        }
        (None, None) => {}
    }
    b.build().map_err(value_error)
}

/// The balancer `method` names (`'smrt'`, `'smote'`, `'random-over'` or `'random-under'`) with
/// the settings in `options`, and the sampling settings it draws with (SMRT's; the default for
/// the others).
pub(crate) fn balancer(
    method: &str,
    strategy: Strategy<i64>,
    seed: u64,
    options: &Bound<'_, PyDict>,
    watch: &Watch,
) -> PyResult<(Box<dyn Balancer<i64> + Send + Sync>, smrt::Sampling)> {
    let option = |key: &str| {
        options
            .get_item(key)
            .ok()
            .flatten()
            .filter(|v| !v.is_none())
    };
    Ok(match method {
        "smrt" => {
            let b = smrt_balancer(strategy, seed, options, watch)?;
            let sampling = *b.sampling();
            (Box::new(b), sampling)
        }
        "smote" => {
            let k: usize = option("k_neighbors").map_or(Ok(5), |v| v.extract())?;
            let smote = Smote::new()
                .strategy(strategy)
                .k_neighbors(k)
                .seed(seed)
                .device(device(options)?);
            (Box::new(smote), smrt::Sampling::default())
        }
        "random-over" => {
            let mut r = RandomOverSampler::new().strategy(strategy).seed(seed);
            if let Some(s) = option("shrinkage") {
                r = match s.cast::<PyDict>() {
                    // imbalanced-learn's dict form, by label code.
                    Ok(by_class) => r.shrinkage_per_class(by_class.extract()?),
                    Err(_) => r.shrinkage(s.extract()?),
                };
            }
            (Box::new(r), smrt::Sampling::default())
        }
        "random-under" => {
            let mut r = RandomUnderSampler::new().strategy(strategy).seed(seed);
            if let Some(replacement) = option("replacement") {
                r = r.replacement(replacement.extract()?);
            }
            (Box::new(r), smrt::Sampling::default())
        }
        other => return Err(PyValueError::new_err(format!("unknown method {other:?}"))),
    })
}
