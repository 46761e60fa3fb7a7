//! SMRT's models across the boundary: the models of a run, their files, fitting without
//! drawing, and drawing from saved models.

use std::collections::BTreeMap;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use smrt::{Categories, Generation, Strategy};

use crate::settings::{device, named, smrt_balancer};
use crate::{value_error, Watch};

/// The models of one SMRT run, by label code, with the sampling settings they draw with.
#[pyclass(frozen)]
pub(crate) struct Models {
    pub(crate) models: BTreeMap<i64, smrt::Vae>,
    pub(crate) sampling: smrt::Sampling,
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
pub(crate) type ModelIndex = (
    String,
    Vec<String>,
    BTreeMap<String, Vec<String>>,
    Vec<String>,
);

/// Reads a model directory written by `smrt fit`, `balance --save-models` or `Models.save`:
/// label column, feature columns, categories of the categorical columns, and the classes that
/// have a model (as text).
#[pyfunction]
pub(crate) fn read_model_index(dir: std::path::PathBuf) -> PyResult<ModelIndex> {
    let saved = smrt::models::SavedModels::load(&dir).map_err(value_error)?;
    let classes = saved.models.keys().cloned().collect();
    Ok((saved.label, saved.features, saved.categories, classes))
}

/// SMRT's models of the classes `classes` (label codes of `y`), each fitted from its rows of
/// `x` and `codes` as `fit_resample` would, whatever the other classes' sizes.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_models<'py>(
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

/// Drawn rows: numeric values, category codes, source rows.
pub(crate) type Drawn<'py> = (
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
pub(crate) fn generate<'py>(
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
