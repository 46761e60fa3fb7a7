//! Many independent fits in the same dispatches: [`Vae::fit_many`].
//!
//! Fits whose networks and per-step arithmetic agree (the classes of one `fit_resample`, or the
//! datasets x folds x seeds of a benchmark) train together: each kernel of a step runs once for
//! all of them. Every model's rows are a block of `B` rows in each activation buffer (`B`: the
//! largest batch among them; a smaller batch is padded with rows whose gradients are zero), and
//! its parameters one block of the packed parameter buffer. Each model keeps its own rows, seed,
//! batch size, epochs and early stopping, and computes exactly what its fit alone computes.
//!
//! They run the one training loop (`train.rs`), which a fit alone runs as a group of one: the
//! per-step inputs of every model (the rows of its batch, and its table entry: rows, seed, step)
//! are uploaded for a chunk of steps at once, and the losses read back once per chunk. A chunk
//! ends where some model ends (with early stopping, where it ends an epoch), so no model steps
//! past the point where it would stop alone; a model that has ended is read back then, and its
//! block idles (zero rows) until the group ends.

use std::ops::ControlFlow;

use ndarray::{Array2, ArrayView2};

use super::train::{train, EpochStats, ManyObserver};
use super::{Heads, Vae, VaeConfig};
use crate::engine::{Device, Engine};
use crate::error::Result;

/// One fit of [`Vae::fit_many`]: rows and settings.
#[derive(Debug, Clone)]
pub struct FitJob<'a> {
    /// The numeric columns of the rows.
    pub x: ArrayView2<'a, f32>,
    /// Their categorical columns as codes (see [`Vae::fit_mixed_on`]); no columns for none.
    pub codes: ArrayView2<'a, u32>,
    /// The settings, seed included.
    pub config: VaeConfig,
    /// The categories of each categorical column the model knows: by default those in
    /// `codes`. Give more (a superset) where `codes` holds a sample of the rows the model will
    /// later encode, so categories the sample missed are still known.
    pub categories: Option<Heads>,
    /// The numeric columns that are yes/no variables (see [`super::Columns::observe`]): by
    /// default those with exactly two values in `x`. Where `x` is one class of a table, give
    /// the columns with two values in the whole table: a column that a small class happens to
    /// hold two values of is no yes/no variable.
    pub binary: Option<&'a [usize]>,
}

impl<'a> FitJob<'a> {
    /// A fit of the numeric rows `x` with `config`.
    pub fn new(x: ArrayView2<'a, f32>, config: VaeConfig) -> Self {
        let codes = ArrayView2::from_shape((x.nrows(), 0), &[]).expect("no columns");
        FitJob {
            x,
            codes,
            config,
            categories: None,
            binary: None,
        }
    }

    /// The same fit with categorical columns `codes`, one row per row of `x`.
    pub fn with_codes(self, codes: ArrayView2<'a, u32>) -> Self {
        FitJob { codes, ..self }
    }

    /// The same fit knowing the categories `categories` (see [`FitJob::categories`]).
    pub fn with_categories(self, categories: Heads) -> Self {
        FitJob {
            categories: Some(categories),
            ..self
        }
    }

    /// The same fit with the yes/no columns `binary` (see [`FitJob::binary`]).
    pub fn with_binary(self, binary: &'a [usize]) -> Self {
        FitJob {
            binary: Some(binary),
            ..self
        }
    }
}

impl Vae {
    /// Fits one model per job on `device` and returns them in order; each is the model
    /// [`Vae::fit_mixed_on`] gives for its job on that device.
    ///
    /// On a GPU, jobs whose networks and per-step settings agree train together, each kernel of
    /// a step once for all of them: a device is then kept busy by many small models, where one
    /// alone leaves it launch-bound. On the CPU engine each job trains alone, one per core.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use smrt::{Device, FitJob, Vae, VaeConfig};
    ///
    /// let small = Array2::from_shape_fn((30, 3), |(i, j)| (i * 3 + j) as f32 * 0.01);
    /// let large = Array2::from_shape_fn((90, 3), |(i, j)| ((i + j) % 7) as f32);
    /// let config = VaeConfig { epochs: 5, min_steps: 0, ..VaeConfig::default() };
    /// let jobs = [
    ///     FitJob::new(small.view(), config.clone()),
    ///     FitJob::new(large.view(), VaeConfig { seed: 7, ..config }),
    /// ];
    /// let models = Vae::fit_many(&Device::Cpu, &jobs)?;
    /// assert_eq!(models.len(), 2);
    /// assert_eq!(models[1].history().epochs.len(), 5);
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn fit_many(device: &Device, jobs: &[FitJob<'_>]) -> Result<Vec<Vae>> {
        Vae::fit_many_observed(device, jobs, None)
    }

    /// [`Vae::fit_many`] with an optional observer of every fit's epochs.
    pub(crate) fn fit_many_observed(
        device: &Device,
        jobs: &[FitJob<'_>],
        observer: Option<ManyObserver<'_>>,
    ) -> Result<Vec<Vae>> {
        match device {
            Device::Cpu => {
                let indexed: Vec<(usize, &FitJob<'_>)> = jobs.iter().enumerate().collect();
                let fit = |&(i, job): &(usize, &FitJob<'_>)| {
                    let observe = |epoch: usize, stats: &EpochStats| match observer {
                        Some(o) => o(i, epoch, stats),
                        None => ControlFlow::Continue(()),
                    };
                    Vae::fit_job(device, job, Some(&observe))
                };
                crate::parallel::parallel_map(&indexed, fit)
                    .into_iter()
                    .collect()
            }
            Device::Gpu(gpu) => fit_many_inner(&mut gpu.engine()?, jobs, observer),
        }
    }

    /// [`Vae::fit_many`] on `engine`, training together every group of jobs that can (on any
    /// engine: on the CPU engine each model is bit for bit the one its fit alone gives there).
    pub fn fit_many_with<E: Engine>(engine: &mut E, jobs: &[FitJob<'_>]) -> Result<Vec<Vae>> {
        fit_many_inner(engine, jobs, None)
    }
}

fn fit_many_inner<E: Engine>(
    e: &mut E,
    jobs: &[FitJob<'_>],
    observer: Option<ManyObserver<'_>>,
) -> Result<Vec<Vae>> {
    let mut prepared = jobs.iter().map(Vae::prepare).collect::<Result<Vec<_>>>()?;
    // Groups of jobs that can train together, in order of their first job, each holding at
    // most GROUP_VALUES values of data (one buffer on a device).
    let mut groups: Vec<(Shape, usize, Vec<usize>)> = Vec::new();
    for (i, (vae, data)) in prepared.iter().enumerate() {
        let shape = Shape::of(vae);
        let fits = |(s, values, _): &&mut (Shape, usize, Vec<usize>)| {
            *s == shape && values + data.len() <= GROUP_VALUES
        };
        match groups.iter_mut().find(fits) {
            Some((_, values, members)) => {
                *values += data.len();
                members.push(i);
            }
            None => groups.push((shape, data.len(), vec![i])),
        }
    }
    for (_, _, members) in groups {
        // The longest fits first: the models still training are then the first blocks, and
        // the kernels of a step cover only those.
        let mut group: Vec<(usize, &mut (Vae, Array2<f32>))> = prepared
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| members.contains(i))
            .collect();
        group.sort_by_key(|(_, (vae, data))| std::cmp::Reverse(planned_steps(vae, data.nrows())));
        let (order, mut group): (Vec<usize>, Vec<_>) = group.into_iter().unzip();
        let observe = |z: usize, epoch: usize, stats: &EpochStats| match observer {
            Some(o) => o(order[z], epoch, stats),
            None => ControlFlow::Continue(()),
        };
        train(e, &mut group, &observe)?;
    }
    Ok(prepared.into_iter().map(|(vae, _)| vae).collect())
}

/// The optimizer steps a fit of `rows` rows takes unless it stops early.
fn planned_steps(vae: &Vae, rows: usize) -> usize {
    let c = &vae.config;
    c.epochs_for(rows) * c.batches_for(rows)
}

/// What models must share to train together: the network (its categorical heads included) and
/// the arithmetic of a step. Rows, seeds, batch sizes, epochs, early stopping, initialisation
/// and scaling may differ.
#[derive(Debug, PartialEq)]
struct Shape {
    width: usize,
    latent: usize,
    /// Each head's first network column and width.
    spans: Vec<u32>,
    config: VaeConfig,
}

impl Shape {
    fn of(vae: &Vae) -> Shape {
        let c = &vae.config;
        let neutral = VaeConfig::default();
        Shape {
            width: vae.network_width(),
            latent: vae.latent,
            spans: vae.network_heads().spans(vae.modelled_features()),
            config: VaeConfig {
                seed: 0,
                epochs: 0,
                min_steps: 0,
                max_steps: 0,
                batch_size: 0,
                early_stopping: None,
                init: neutral.init,
                bias_init: neutral.bias_init,
                scaling: neutral.scaling,
                ..c.clone()
            },
        }
    }
}

/// The most values of data a group trains on together (128 MB of `f32`, a storage binding
/// every device allows).
const GROUP_VALUES: usize = 1 << 25;
