//! NumPy arrays in and out: float32 and float64 rows, the direct over-sampling path, and
//! conversions spread over every core.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use smrt::{Categories, Origin, Strategy};

use crate::settings::{balancer, strategy};
use crate::{run_watched, value_error, Watch};

/// The element types of the arrays `oversample` and `stack` take: NumPy's `float32` and
/// `float64`.
pub(crate) trait Float: numpy::Element + Copy + Send + Sync + From<f32> {
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
pub(crate) fn first_non_finite<T: Float>(x: &[T], width: usize) -> Option<smrt::Error> {
    let at = x.iter().position(|v| !v.finite_f32())?;
    Some(smrt::Error::NonFinite {
        row: at / width,
        col: at % width,
        value: x[at].to_f32(),
    })
}

/// The output rows (the input's, then the synthetic ones), the synthetic rows' label codes, and
/// the input row each was drawn from.
pub(crate) type Oversampled<'py> = (
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
pub(crate) fn oversample<'py>(
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

pub(crate) fn oversampled<'py, T: Float>(
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

/// `out` split into pieces of whole rows (`width` values each), `fill(first row, piece)` on one
/// thread per core (rayon's pool): new memory is touched (and zeroed by the system) on every
/// core at once.
pub(crate) fn fill_on_every_core<T: Send>(
    out: &mut [T],
    width: usize,
    fill: impl Fn(usize, &mut [T]) + Sync,
) {
    use rayon::prelude::*;

    let rows = out.len() / width.max(1);
    let per = rows.div_ceil(rayon::current_num_threads()).max(1);
    out.par_chunks_mut(per * width.max(1))
        .enumerate()
        .for_each(|(i, piece)| fill(i * per, piece));
}

/// `x` (C order) as a new `float32` array, converted on every core.
#[pyfunction]
pub(crate) fn as_f32<'py>(
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
pub(crate) fn stacked_rows<'py, T: Float>(
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
pub(crate) fn stack<'py>(
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
