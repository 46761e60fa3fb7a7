//! `smrt._smrt`: the samplers over NumPy arrays, for the Python package (`pysrc/smrt`), which
//! wraps them in scikit-learn style classes. Arrays come in as views (no copy when they are
//! already `float32` / `uint32` / `int64`), the computation runs with the GIL released, and every
//! error comes back as a `ValueError` with smrt's message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use smrt::{Backend, Categories, Origin};

use arrays::{as_f32, oversample, stack};
use models::{fit_models, generate, read_model_index, Models};
use settings::{balancer, strategy};

mod arrays;
mod models;
mod settings;

/// A `ValueError` carrying `e`'s message (smrt's errors read the same in Python).
pub(crate) fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// What the main thread watches while the work runs: a stop flag, and epochs to report.
#[derive(Default)]
pub(crate) struct Watch {
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

/// Runs `work` on its own thread while this one waits with the GIL released, and between waits
/// takes it to pass Ctrl-C on (as a stop between epochs, through `watch`) and to report
/// progress to `progress(class, epoch, loss)`.
pub(crate) fn run_watched<T: Send>(
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
