//! `smrt._smrt`: the samplers over NumPy arrays, for the Python package (`pysrc/smrt`), which
//! wraps them in scikit-learn style classes. Arrays come in as views (no copy when they are
//! already `float32` / `uint32` / `int64`), the computation runs with the GIL released, and every
//! error comes back as a `ValueError` with smrt's message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyString};
use smrt::{
    Activation, Backend, Balancer, BiasInit, Categories, CategoryDraw, EarlyStopping, Generation,
    Init, Latent, Likelihood, Optimizer, Origin, RandomOverSampler, RandomUnderSampler, Scaling,
    Smote, Smrt, Strategy,
};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `'auto'`, `'not majority'`, `'minority'`, a float in (0, 1], or `{label code: count}`.
fn strategy(s: &Bound<'_, PyAny>) -> PyResult<Strategy<i64>> {
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
fn named<T: serde::de::DeserializeOwned>(key: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    let text: String = v.extract()?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| PyValueError::new_err(format!("{key}: {text:?} is not a valid value")))
}

/// The device of `backend`; `auto` is resolved once per process (probing the adapters takes
/// tens of milliseconds, more than a SMOTE call on 100,000 rows).
fn device(options: &Bound<'_, PyDict>) -> PyResult<smrt::Device> {
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

fn backend(options: &Bound<'_, PyDict>) -> PyResult<Backend> {
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
fn smrt_balancer(
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

/// What the main thread watches while the work runs: a stop flag, and epochs to report.
#[derive(Default)]
struct Watch {
    stop: Arc<AtomicBool>,
    epochs: Arc<Mutex<Vec<(i64, usize, f64)>>>,
}

/// The output arrays: numeric columns, categorical codes, label codes, and for each row the
/// input row it is (real) or was drawn from (synthetic; -1 where there is none); and SMRT's
/// models.
type Output<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<u32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<bool>>,
    Option<Models>,
);

/// The models of one SMRT run, by label code, with the sampling settings they draw with.
#[pyclass(frozen)]
struct Models {
    models: BTreeMap<i64, smrt::Vae>,
    sampling: smrt::Sampling,
}

#[pymethods]
impl Models {
    /// Writes the models as `smrt fit` does, for the CLI's `generate` and `--models`:
    /// `class_names[code]` is each class's label as text, `features` the column names in order,
    /// `categories` the text of each categorical column's categories (by column name).
    fn save(
        &self,
        dir: std::path::PathBuf,
        label: String,
        features: Vec<String>,
        categories: BTreeMap<String, Vec<String>>,
        class_names: Vec<String>,
    ) -> PyResult<()> {
        let mut models = BTreeMap::new();
        for (code, vae) in &self.models {
            let name = usize::try_from(*code)
                .ok()
                .and_then(|c| class_names.get(c))
                .ok_or_else(|| PyValueError::new_err(format!("no class name for code {code}")))?;
            models.insert(name.clone(), vae.clone());
        }
        smrt::models::SavedModels {
            label,
            features,
            categories,
            sampling: self.sampling,
            models,
        }
        .save(&dir)
        .map_err(value_error)
    }

    /// The classes that have a model (label codes).
    fn classes(&self) -> Vec<i64> {
        self.models.keys().copied().collect()
    }
}

/// Label column, feature columns, categories by column, classes with a model.
type ModelIndex = (
    String,
    Vec<String>,
    BTreeMap<String, Vec<String>>,
    Vec<String>,
);

/// Reads a model directory written by `smrt fit`, `balance --save-models` or `Models.save`:
/// label column, feature columns, categories of the categorical columns, and the classes that
/// have a model (as text).
#[pyfunction]
fn read_model_index(dir: std::path::PathBuf) -> PyResult<ModelIndex> {
    let saved = smrt::models::SavedModels::load(&dir).map_err(value_error)?;
    let classes = saved.models.keys().cloned().collect();
    Ok((saved.label, saved.features, saved.categories, classes))
}

/// The balancer `method` names (`'smrt'`, `'smote'`, `'random-over'` or `'random-under'`) with
/// the settings in `options`, and the sampling settings it draws with (SMRT's; the default for
/// the others).
fn balancer(
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

/// Runs `work` on its own thread while this one waits with the GIL released, and between waits
/// takes it to pass Ctrl-C on (as a stop between epochs, through `watch`) and to report
/// progress to `progress(class, epoch, loss)`.
fn run_watched<T: Send>(
    py: Python<'_>,
    watch: &Watch,
    progress: Option<Bound<'_, PyAny>>,
    work: impl FnOnce() -> smrt::Result<T> + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| -> PyResult<T> {
        let (done, result) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let _ = done.send(work());
        });
        let mut interrupted = None;
        let mut result = result;
        loop {
            // Returns as soon as the work is done, or after 50 ms to look at signals.
            let (waited, back) = py.detach(move || {
                let waited = result.recv_timeout(Duration::from_millis(50));
                (waited, result)
            });
            result = back;
            let pending: Vec<(i64, usize, f64)> = watch
                .epochs
                .lock()
                .map(|mut e| std::mem::take(&mut *e))
                .unwrap_or_default();
            if let Some(report) = &progress {
                for (class, epoch, loss) in pending {
                    report.call1((class, epoch, loss))?;
                }
            }
            match waited {
                Ok(r) => {
                    return match interrupted {
                        Some(e) => Err(e),
                        None => r.map_err(value_error),
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PyValueError::new_err("smrt failed unexpectedly"))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if interrupted.is_none() {
                if let Err(e) = py.check_signals() {
                    watch.stop.store(true, Ordering::Relaxed);
                    interrupted = Some(e);
                }
            }
        }
    })
}

/// Resamples rows (numeric columns `x`, categorical columns `codes` of `levels` categories each)
/// with label codes `y`, by `method`: `'smrt'`, `'smote'`, `'random-over'` or `'random-under'`.
/// With `synthetic_only`, only the synthetic rows come back ([`Balancer::fit_synthetic`]).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn fit_resample<'py>(
    py: Python<'py>,
    method: &str,
    x: PyReadonlyArray2<'py, f32>,
    codes: PyReadonlyArray2<'py, u32>,
    levels: Vec<u32>,
    y: PyReadonlyArray1<'py, i64>,
    sampling_strategy: &Bound<'py, PyAny>,
    seed: u64,
    options: &Bound<'py, PyDict>,
    synthetic_only: bool,
) -> PyResult<Output<'py>> {
    let watch = Watch::default();
    let (balancer, sampling) =
        balancer(method, strategy(sampling_strategy)?, seed, options, &watch)?;
    let (x, codes, y) = (x.as_array(), codes.as_array(), y.as_slice()?);
    let progress = options.get_item("progress")?.filter(|v| !v.is_none());
    let out = run_watched(py, &watch, progress, || {
        let categories = Categories {
            codes,
            levels: &levels,
        };
        if synthetic_only {
            balancer.fit_synthetic(x, categories, y, smrt::shard::Shard::ALL)
        } else {
            balancer.fit_resample_mixed(x, categories, y)
        }
    })?;
    let (rows, synthetic): (Vec<i64>, Vec<bool>) = out
        .origin
        .iter()
        .map(|o| match *o {
            Origin::Real(i) => (i as i64, false),
            Origin::Synthetic { source } => (source.map_or(-1, |i| i as i64), true),
        })
        .unzip();
    let models = (method == "smrt").then(|| Models {
        models: out.models,
        sampling,
    });
    Ok((
        out.x.into_pyarray(py),
        out.codes.into_pyarray(py),
        out.y.into_pyarray(py),
        rows.into_pyarray(py),
        synthetic.into_pyarray(py),
        models,
    ))
}

/// The element types of the arrays `oversample` and `stack` take: NumPy's `float32` and
/// `float64`.
trait Float: numpy::Element + Copy + Send + Sync + From<f32> {
    /// The value as smrt computes with it (a `float64` beyond `float32`'s range is infinite).
    fn to_f32(self) -> f32;
    /// Whether [`Float::to_f32`] is finite, tested without converting (one comparison, which
    /// vectorises).
    fn finite_f32(self) -> bool;
}

impl Float for f32 {
    fn to_f32(self) -> f32 {
        self
    }

    fn finite_f32(self) -> bool {
        self.is_finite()
    }
}

impl Float for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }

    fn finite_f32(self) -> bool {
        // Rounding to nearest, ties to even, takes to infinity exactly the values from
        // float32's largest plus half its last step (2^103), whose mantissa is odd.
        self.abs() < f64::from(f32::MAX) + 2f64.powi(103)
    }
}

/// The first value of `x` (row-major, `width` columns) that is not finite in `float32`, as
/// smrt's error for it.
fn first_non_finite<T: Float>(x: &[T], width: usize) -> Option<smrt::Error> {
    let at = x.iter().position(|v| !v.finite_f32())?;
    Some(smrt::Error::NonFinite {
        row: at / width,
        col: at % width,
        value: x[at].to_f32(),
    })
}

/// The output rows (the input's, then the synthetic ones), the synthetic rows' label codes, and
/// the input row each was drawn from.
type Oversampled<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// Over-samples the rows of `x` (numeric, C order, `float32` or `float64`) with label codes `y`
/// (`0..classes`) by `method`, `'smote'` or `'random-over'`: returns the input rows then the
/// synthetic rows as one new array of `x`'s type, the synthetic rows' label codes, and the
/// input row each was drawn from.
///
/// The same rows as `fit_resample` with `synthetic_only`, for less: only the rows of the
/// classes that grow are converted to `float32` and handed to smrt (with one row of each other
/// class, so every class keeps its number, which keys its random streams); the other rows are
/// checked as they are copied to the output, on every core.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn oversample<'py>(
    py: Python<'py>,
    method: &str,
    x: &Bound<'py, PyAny>,
    y: PyReadonlyArray1<'py, i64>,
    sampling_strategy: &Bound<'py, PyAny>,
    seed: u64,
    options: &Bound<'py, PyDict>,
) -> PyResult<Oversampled<'py>> {
    if !matches!(method, "smote" | "random-over") {
        return Err(PyValueError::new_err(format!(
            "oversample: {method:?} is not 'smote' or 'random-over'"
        )));
    }
    match x.extract::<PyReadonlyArray2<'py, f64>>() {
        Ok(x) => oversampled(py, method, x, y, sampling_strategy, seed, options),
        Err(_) => {
            let x = x.extract::<PyReadonlyArray2<'py, f32>>()?;
            oversampled(py, method, x, y, sampling_strategy, seed, options)
        }
    }
}

fn oversampled<'py, T: Float>(
    py: Python<'py>,
    method: &str,
    x: PyReadonlyArray2<'py, T>,
    y: PyReadonlyArray1<'py, i64>,
    sampling_strategy: &Bound<'py, PyAny>,
    seed: u64,
    options: &Bound<'py, PyDict>,
) -> PyResult<Oversampled<'py>> {
    let (n, width) = x.as_array().dim();
    let (input, y) = (x.as_slice()?, y.as_slice()?);
    if y.len() != n {
        return Err(PyValueError::new_err(format!(
            "X has {n} rows and y has {} labels",
            y.len()
        )));
    }
    if n == 0 || width == 0 {
        return Err(PyValueError::new_err(
            "oversample: X needs rows and numeric columns",
        ));
    }
    if y.iter().any(|&c| c < 0) {
        return Err(PyValueError::new_err("negative label code"));
    }
    let classes = y.iter().max().map_or(0, |&c| c as usize + 1);
    let mut counts = vec![0usize; classes];
    for &c in y {
        counts[c as usize] += 1;
    }
    let present: BTreeMap<i64, usize> = (0..).zip(counts).filter(|(_, n)| *n > 0).collect();
    let to_add = strategy(sampling_strategy)?
        .samples_to_add(&present)
        .map_err(value_error)?;
    let targets: BTreeMap<i64, usize> = (to_add.iter())
        .filter(|(_, &add)| add > 0)
        .map(|(&c, &add)| (c, present[&c] + add))
        .collect();
    // The rows smrt sees: every row of a class that grows, the first of each other class.
    let grows: Vec<bool> = (0..classes as i64)
        .map(|c| targets.contains_key(&c))
        .collect();
    let mut take = vec![true; classes];
    let picked: Vec<usize> = (0..n)
        .filter(|&i| {
            let c = y[i] as usize;
            let taken = take[c];
            take[c] = grows[c];
            taken
        })
        .collect();
    let mut some = Vec::with_capacity(picked.len() * width);
    for &i in &picked {
        some.extend(input[i * width..(i + 1) * width].iter().map(|v| v.to_f32()));
    }
    if some.iter().any(|v| !v.is_finite()) {
        return Err(value_error(
            first_non_finite(input, width).expect("a value"),
        ));
    }
    let some = ndarray::Array2::from_shape_vec((picked.len(), width), some).expect("rows x width");
    let some_y: Vec<i64> = picked.iter().map(|&i| y[i]).collect();
    let watch = Watch::default();
    let (balancer, _) = balancer(method, Strategy::Targets(targets), seed, options, &watch)?;
    let no_codes = ndarray::Array2::<u32>::zeros((picked.len(), 0));
    let made = run_watched(py, &watch, None, || {
        let categories = Categories {
            codes: no_codes.view(),
            levels: &[],
        };
        balancer.fit_synthetic(some.view(), categories, &some_y, smrt::shard::Shard::ALL)
    })?;
    let sources: Vec<i64> = (made.origin.iter())
        .map(|o| match *o {
            Origin::Synthetic { source: Some(i) } => picked[i] as i64,
            _ => -1,
        })
        .collect();
    let synthetic = made.x.as_slice().expect("a standard-layout matrix");
    let rows = (synthetic, made.y.len());
    let (out, finite) = stacked_rows(py, (input, n), rows, width)?;
    if !finite {
        return Err(value_error(
            first_non_finite(input, width).expect("a value"),
        ));
    }
    Ok((
        out.into_any(),
        made.y.into_pyarray(py),
        sources.into_pyarray(py),
    ))
}

/// SMRT's models of the classes `classes` (label codes of `y`), each fitted from its rows of
/// `x` and `codes` as `fit_resample` would, whatever the other classes' sizes.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn fit_models<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    codes: PyReadonlyArray2<'py, u32>,
    levels: Vec<u32>,
    y: PyReadonlyArray1<'py, i64>,
    classes: Vec<i64>,
    seed: u64,
    options: &Bound<'py, PyDict>,
) -> PyResult<Models> {
    let watch = Watch::default();
    let smrt = smrt_balancer(Strategy::NotMajority, seed, options, &watch)?;
    let (x, codes, y) = (x.as_array(), codes.as_array(), y.as_slice()?);
    let categories = Categories {
        codes,
        levels: &levels,
    };
    let models = py
        .detach(|| smrt.fit_models_mixed(x, Some(categories), y, Some(&classes)))
        .map_err(value_error)?;
    Ok(Models {
        models,
        sampling: *smrt.sampling(),
    })
}

/// For classes `0..counts.len()` with these row counts, what `sampling_strategy` asks: rows to
/// add to each class (over-sampling), or with `under`, rows to keep of each (classes left alone
/// absent).
#[pyfunction]
fn plan(
    counts: Vec<usize>,
    sampling_strategy: &Bound<'_, PyAny>,
    under: bool,
) -> PyResult<BTreeMap<i64, usize>> {
    let strategy = strategy(sampling_strategy)?;
    let counts: BTreeMap<i64, usize> = (0..).zip(counts).collect();
    match under {
        false => strategy.samples_to_add(&counts),
        true => strategy.rows_to_keep(&counts),
    }
    .map_err(value_error)
}

/// Whether each row with key `keys[i]` is kept at its class's keep rate `rates[i]`
/// (`smrt::balance::keyed::keeps`, the rule of `balance --row-key`).
#[pyfunction]
fn keeps<'py>(
    py: Python<'py>,
    keys: Vec<String>,
    rates: PyReadonlyArray1<'py, f64>,
    seed: u64,
) -> PyResult<Bound<'py, PyArray1<bool>>> {
    let rates = rates.as_slice()?;
    if rates.len() != keys.len() {
        return Err(PyValueError::new_err(format!(
            "{} keys and {} rates",
            keys.len(),
            rates.len()
        )));
    }
    let kept: Vec<bool> = (keys.iter().zip(rates))
        .map(|(k, &r)| smrt::balance::keyed::keeps(k.as_bytes(), seed, r))
        .collect();
    Ok(kept.into_pyarray(py))
}

/// Drawn rows: numeric values, category codes, source rows.
type Drawn<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray2<u32>>,
    Bound<'py, PyArray1<i64>>,
);

/// Rows `shard` of the `n` rows `smrt generate` draws for class `class` from the models saved in
/// `dir` with `seed`: numeric values, category codes (in the models' dictionaries) and each
/// row's source row in `x` (-1 for none). `x`, `codes`: the class's real rows, for the modes
/// that start from them (else empty). `options`: `generation`, `temperature`, `backend`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn generate<'py>(
    py: Python<'py>,
    dir: std::path::PathBuf,
    class: String,
    n: usize,
    seed: u64,
    shard: (usize, usize),
    x: PyReadonlyArray2<'py, f32>,
    codes: PyReadonlyArray2<'py, u32>,
    options: &Bound<'py, PyDict>,
) -> PyResult<Drawn<'py>> {
    let saved = smrt::models::SavedModels::load(&dir).map_err(value_error)?;
    let Some(vae) = saved.models.get(&class) else {
        return Err(PyValueError::new_err(format!(
            "no model for class {class:?} in {} (there are models for {:?})",
            dir.display(),
            saved.models.keys().collect::<Vec<_>>()
        )));
    };
    let shard = smrt::shard::Shard::new(shard.0, shard.1).map_err(value_error)?;
    let mut sampling = saved.sampling;
    if let Some(g) = options.get_item("generation")?.filter(|v| !v.is_none()) {
        sampling.generation = named::<Generation>("generation", &g)?;
    }
    if let Some(t) = options.get_item("temperature")?.filter(|v| !v.is_none()) {
        sampling.temperature = t.extract()?;
    }
    let device = device(options)?;
    let (x, codes) = (x.as_array(), codes.as_array());
    let rows = shard.range(n);
    let drawn = py.detach(|| -> smrt::Result<_> {
        let drawer = vae.drawer(&device, x, codes, seed, &sampling)?;
        drawer.rows(rows)
    });
    let (values, codes, sources) = drawn.map_err(value_error)?;
    let sources: Vec<i64> = sources.iter().map(|s| s.map_or(-1, |i| i as i64)).collect();
    Ok((
        values.into_pyarray(py),
        codes.into_pyarray(py),
        sources.into_pyarray(py),
    ))
}

/// `out` split into pieces of whole rows (`width` values each), `fill(first row, piece)` on one
/// thread per core (rayon's pool): new memory is touched (and zeroed by the system) on every
/// core at once.
fn fill_on_every_core<T: Send>(out: &mut [T], width: usize, fill: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;

    let rows = out.len() / width.max(1);
    let per = rows.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per * width.max(1))
        .enumerate()
        .for_each(|(i, piece)| fill(i * per, piece));
}

/// `x` (C order) as a new `float32` array, converted on every core.
#[pyfunction]
fn as_f32<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (rows, width) = x.as_array().dim();
    let input = x.as_slice()?;
    // Zeros from calloc: fresh pages, first touched (and so zeroed) by the threads below.
    let out = PyArray2::<f32>::zeros(py, [rows, width], false);
    // SAFETY: the array is new; nothing else holds a view of it.
    let values = unsafe { out.as_slice_mut()? };
    py.detach(|| {
        fill_on_every_core(values, width, |first, piece| {
            let from = &input[first * width..first * width + piece.len()];
            piece.iter_mut().zip(from).for_each(|(o, &v)| *o = v as f32);
        })
    });
    Ok(out)
}

/// The `n` rows of `input` (row-major, `width` columns), then the `s` rows of `synthetic`
/// converted to `T`, as one new array, written on every core; and whether every input value is
/// finite in `float32` (checked as it is copied).
fn stacked_rows<'py, T: Float>(
    py: Python<'py>,
    (input, n): (&[T], usize),
    (synthetic, s): (&[f32], usize),
    width: usize,
) -> PyResult<(Bound<'py, PyArray2<T>>, bool)> {
    let w = width.max(1);
    // Zeros from calloc: fresh pages, first touched (and so zeroed) by the threads below.
    let out = PyArray2::<T>::zeros(py, [n + s, width], false);
    // SAFETY: the array is new; nothing else holds a view of it.
    let values = unsafe { out.as_slice_mut()? };
    let finite = AtomicBool::new(true);
    py.detach(|| {
        fill_on_every_core(values, width, |first, piece| {
            let mut ok = true;
            for (r, row) in (first..).zip(piece.chunks_exact_mut(w)) {
                if r < n {
                    let from = &input[r * w..(r + 1) * w];
                    row.copy_from_slice(from);
                    ok &= from.iter().fold(true, |ok, v| ok & v.finite_f32());
                } else {
                    let from = &synthetic[(r - n) * w..(r - n + 1) * w];
                    row.iter_mut().zip(from).for_each(|(o, &v)| *o = T::from(v));
                }
            }
            if !ok {
                finite.store(false, Ordering::Relaxed);
            }
        })
    });
    Ok((out, finite.into_inner()))
}

/// The rows of `input` (C order, `float32` or `float64`), then the rows of `synthetic`, as one
/// new array of `input`'s type, copied on every core.
#[pyfunction]
fn stack<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    synthetic: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyAny>> {
    fn stacked<'py, T: Float>(
        py: Python<'py>,
        input: PyReadonlyArray2<'py, T>,
        synthetic: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (n, width) = input.as_array().dim();
        let (s, w) = synthetic.as_array().dim();
        if w != width {
            return Err(PyValueError::new_err(format!(
                "stack: {width} columns in the input, {w} in the synthetic rows"
            )));
        }
        let (input, made) = (input.as_slice()?, synthetic.as_slice()?);
        Ok(stacked_rows(py, (input, n), (made, s), width)?.0.into_any())
    }
    match input.extract::<PyReadonlyArray2<'py, f64>>() {
        Ok(x) => stacked(py, x, synthetic),
        Err(_) => stacked(
            py,
            input.extract::<PyReadonlyArray2<'py, f32>>()?,
            synthetic,
        ),
    }
}

/// The GPU adapters wgpu finds, one line each, and the engine `auto` picks.
#[pyfunction]
fn info() -> PyResult<String> {
    let adapters = smrt::engine::adapters();
    let mut s = String::new();
    for a in &adapters {
        s += &format!("{a}\n");
    }
    let picked = smrt::Device::new(Backend::Auto).map_err(value_error)?;
    s += &format!("auto: {}\n", picked.name());
    Ok(s)
}

/// The version of the smrt crate built into this module.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _smrt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // As the `smrt` command does: Mesa's device-select layer would print an error line per
    // display it tries on a headless machine while adapters are listed; smrt ranks adapters
    // itself. Set at import, before smrt starts any thread, unless the user set either variable.
    if std::env::var_os("NODEVICE_SELECT").is_none()
        && std::env::var_os("MESA_VK_DEVICE_SELECT").is_none()
    {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    m.add_function(wrap_pyfunction!(fit_resample, m)?)?;
    m.add_function(wrap_pyfunction!(read_model_index, m)?)?;
    m.add_class::<Models>()?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(as_f32, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(fit_models, m)?)?;
    m.add_function(wrap_pyfunction!(keeps, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(stack, m)?)?;
    m.add_function(wrap_pyfunction!(oversample, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
