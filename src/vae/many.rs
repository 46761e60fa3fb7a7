//! Many independent fits in the same dispatches: [`Vae::fit_many`].
//!
//! Fits whose networks and per-step arithmetic agree (the classes of one `fit_resample`, or the
//! datasets x folds x seeds of a benchmark) train together: each kernel of a step runs once for
//! all of them. Every model's rows are a block of `B` rows in each activation buffer (`B`: the
//! largest batch among them; a smaller batch is padded with rows whose gradients are zero), and
//! its parameters one block of the packed parameter buffer. Each model keeps its own rows, seed,
//! batch size, epochs and early stopping, and computes exactly what its fit alone computes.
//!
//! The per-step inputs of every model (the rows of its batch, and its [`ModelStep`]: rows, seed,
//! step) are uploaded for a chunk of steps at once, and the losses read back once per chunk. A
//! chunk ends where some model ends (with early stopping, where it ends an epoch), so no model
//! steps past the point where it would stop alone; a model that has ended is read back then,
//! and its block idles (zero rows) until the group ends.

use std::ops::ControlFlow;
use std::time::Instant;

use ndarray::{Array2, ArrayView2};

use super::network::{backward, forward, DeviceLayer, Dropout, MaskStreams, Rows, StackBuffers};
use super::train::{end_epoch, epoch_stats, EpochStats, History, Parameters, Patience, SLOTS};
use super::{Heads, Vae, VaeConfig};
use crate::engine::{Blocks, Device, Engine, ModelStep, Models};
use crate::error::Result;
use crate::rng::{permutation, Purpose, Stream};

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

/// Called after every epoch of every fit with the fit's index, the epoch (from 0) and its
/// losses; [`ControlFlow::Break`] stops every fit with [`crate::Error::Interrupted`].
pub(crate) type ManyObserver<'a> =
    &'a (dyn Fn(usize, usize, &EpochStats) -> ControlFlow<()> + Sync);

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
        let observe_one = |i: usize| {
            move |epoch: usize, stats: &EpochStats| match observer {
                Some(o) => o(i, epoch, stats),
                None => ControlFlow::Continue(()),
            }
        };
        if let [i] = members[..] {
            let (vae, data) = &mut prepared[i];
            vae.history = super::train::train(e, vae, data.view(), Some(&observe_one(i)))?;
            continue;
        }
        // The longest fits first: the models still training are then the first blocks, and
        // the kernels of a step cover only those.
        let mut group: Vec<(usize, &mut (Vae, Array2<f32>))> = prepared
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| members.contains(i))
            .collect();
        group.sort_by_key(|(_, (vae, data))| std::cmp::Reverse(planned_steps(vae, data.nrows())));
        let (order, mut group): (Vec<usize>, Vec<_>) = group.into_iter().unzip();
        let observe =
            |z: usize, epoch: usize, stats: &EpochStats| observe_one(order[z])(epoch, stats);
        train_together(e, &mut group, &observe)?;
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

/// Steps uploaded (and losses read back) at a time, at most.
const CHUNK: usize = 256;

/// The most row indices uploaded for one chunk (16 MB): fewer steps a chunk for many models
/// with large batches.
const CHUNK_INDICES: usize = 1 << 22;

/// The most values of data a group trains on together (128 MB of `f32`, a storage binding
/// every device allows).
const GROUP_VALUES: usize = 1 << 25;

/// One model of a group: its schedule and its record so far.
struct Member {
    /// Its own settings (early stopping may differ within a group).
    config: VaeConfig,
    rows: usize,
    /// Its first row in the group's data.
    offset: usize,
    batch: usize,
    batches: usize,
    epochs: usize,
    seed: u64,
    /// The shuffle of the epoch in progress.
    order: Vec<u32>,
    /// The batch sums of the epoch in progress, `SLOTS` each, and its seconds so far.
    sums: Vec<f32>,
    seconds: f64,
    history: History,
    patience: Patience,
    /// Steps taken, and whether it has ended.
    steps: usize,
    done: bool,
}

impl Member {
    /// Steps from `t` to the next step after which the host must look at this model: its last,
    /// or with early stopping the end of its epoch.
    fn until_sync(&self, t: usize) -> usize {
        let last = self.epochs * self.batches;
        let next = match self.config.early_stopping {
            Some(_) => (t / self.batches + 1) * self.batches,
            None => last,
        };
        next.min(last) - t
    }
}

/// Trains the prepared models of `group` (one shape) together; their histories and layers are
/// written back into them.
fn train_together<E: Engine>(
    e: &mut E,
    group: &mut [&mut (Vae, Array2<f32>)],
    observer: &(dyn Fn(usize, usize, &EpochStats) -> ControlFlow<()> + Sync),
) -> Result<()> {
    let count = group.len();
    let cfg = group[0].0.config.clone();
    let (d, latent) = (group[0].1.ncols(), group[0].0.latent);
    let numeric = group[0].0.modelled_features();
    let network_heads = group[0].0.network_heads();
    let heads = match network_heads.len() {
        0 => None,
        count => Some((e.upload_indices(&network_heads.spans(numeric))?, count)),
    };
    let mut members = Vec::with_capacity(count);
    let mut offset = 0;
    for (vae, data) in group.iter() {
        let rows = data.nrows();
        let c = &vae.config;
        members.push(Member {
            config: c.clone(),
            rows,
            offset,
            batch: c.batch_for(rows),
            batches: c.batches_for(rows),
            epochs: c.epochs_for(rows),
            seed: c.seed,
            order: Vec::new(),
            sums: Vec::new(),
            seconds: 0.0,
            history: History::default(),
            patience: Patience::default(),
            steps: 0,
            done: false,
        });
        offset += rows;
    }
    let b = members.iter().map(|m| m.batch).max().expect("a group");
    let all: Vec<f32> = group
        .iter()
        .flat_map(|(_, data)| data.iter().copied())
        .collect();
    let data = e.upload(&all)?;
    let vaes: Vec<&Vae> = group.iter().map(|(v, _)| v).collect();
    let mut p = Parameters::upload(e, &vaes)?;
    let with_dropout = cfg.dropout > 0.0;
    let mut enc_bufs = StackBuffers::new(e, &p.enc, b * count, with_dropout)?;
    let mut dec_bufs = StackBuffers::new(e, &p.dec, b * count, with_dropout)?;
    let mut gouts = |layers: &[DeviceLayer<E::Buffer>]| {
        layers
            .iter()
            .map(|l| e.zeros(b * count * l.fan_out))
            .collect::<Result<Vec<_>>>()
    };
    let mut enc_gout = gouts(&p.enc)?;
    let mut dec_gout = gouts(&p.dec)?;
    let mut xb = e.zeros(b * count * d)?;
    let mut z = e.zeros(b * count * latent)?;
    let mut eps = e.zeros(b * count * latent)?;
    let mut dz = e.zeros(b * count * latent)?;
    let mut losses = e.zeros(count * CHUNK * SLOTS)?;
    let mut norm = e.zeros(count)?;
    let mut variance_terms = match p.variance {
        Some(_) => Some(e.zeros(b * count * numeric)?),
        None => None,
    };
    let (enc_last, dec_last) = (p.enc.len() - 1, p.dec.len() - 1);

    let mut t = 0usize;
    while let Some(last_live) = members.iter().rposition(|m| !m.done) {
        // Kernels cover the models up to the last one still training.
        let live = last_live + 1;
        let active = members.iter().filter(|m| !m.done);
        let len = active
            .map(|m| m.until_sync(t))
            .min()
            .expect("an active model")
            .min(CHUNK)
            .min((CHUNK_INDICES / (live * b)).max(1));
        // Each step's table entries and gathered rows, for every model.
        let mut table = Vec::with_capacity(len * live);
        let mut rows_idx = Vec::with_capacity(len * live * b);
        for step in t + 1..=t + len {
            for m in &mut members[..live] {
                let first = m.offset as u32;
                if m.done {
                    table.push(ModelStep {
                        rows: 0,
                        seed: m.seed,
                        step: step as u32,
                    });
                    rows_idx.extend(std::iter::repeat_n(first, b));
                    continue;
                }
                let (epoch, batch_no) = ((step - 1) / m.batches, (step - 1) % m.batches);
                if batch_no == 0 {
                    let shuffle = Stream::new(m.seed, Purpose::Shuffle, epoch as u32);
                    m.order = permutation(&shuffle, m.rows);
                }
                let start = batch_no * m.batch;
                let n = m.batch.min(m.rows - start);
                table.push(ModelStep {
                    rows: n,
                    seed: m.seed,
                    step: step as u32,
                });
                rows_idx.extend(m.order[start..start + n].iter().map(|&i| first + i));
                rows_idx.extend(std::iter::repeat_n(first, b - n));
            }
        }
        let started = Instant::now();
        let table = e.upload_indices(&ModelStep::table(&table))?;
        let rows_idx = e.upload_indices(&rows_idx)?;
        e.fill(&mut losses, count * CHUNK * SLOTS, 0.0);
        for s in 0..len {
            let models = Models {
                table: &table,
                at: s * live,
                count: live,
            };
            let r = Rows {
                rows: b,
                models: live,
            };
            let slots = |k: usize| (s * SLOTS + k, CHUNK * SLOTS);
            let dropout = |stack| {
                with_dropout.then_some(Dropout {
                    rate: cfg.dropout,
                    stack,
                    streams: MaskStreams::Models(models),
                })
            };
            let (enc_drop, dec_drop) = (dropout(0), dropout(1));
            e.gather_rows(&data, d, &rows_idx, s * live * b, live * b, &mut xb);
            forward(e, &p.enc, &xb, r, &mut enc_bufs, enc_drop);
            let head = enc_bufs.output();
            e.reparameterize_models(head, b, latent, Purpose::Noise, models, &mut z, &mut eps);
            forward(e, &p.dec, &z, r, &mut dec_bufs, dec_drop);
            let out = dec_bufs.output();
            let dout = &mut dec_gout[dec_last];
            match (&mut p.variance, &mut variance_terms) {
                (Some(v), Some(terms)) => {
                    e.gaussian_learned_models(
                        (out, &xb, &v.s),
                        (b, d, numeric),
                        v.stride,
                        models,
                        (&mut *dout, &mut *terms),
                        &mut losses,
                        slots(0),
                    );
                    let ds = Blocks {
                        count: live,
                        stride: v.stride,
                    };
                    e.bias_grad(terms, b, numeric, ds, &mut v.ds);
                }
                _ => e.reconstruction_models(
                    cfg.likelihood,
                    (out, &xb),
                    (b, d, numeric),
                    models,
                    &mut *dout,
                    &mut losses,
                    slots(0),
                ),
            }
            if let Some((spans, count)) = &heads {
                e.softmax_cross_entropy_models(
                    (out, &xb),
                    (b, d),
                    (spans, *count),
                    models,
                    dout,
                    &mut losses,
                    slots(0),
                );
            }
            let (enc_grads, dec_grads) = (&mut p.enc_grads, &mut p.dec_grads);
            backward(
                e,
                &p.dec,
                dec_grads,
                &z,
                r,
                &dec_bufs,
                &mut dec_gout,
                Some(&mut dz),
                dec_drop,
            );
            e.kl_models(
                (enc_bufs.output(), &eps, &dz),
                (b, latent),
                cfg.beta,
                models,
                &mut enc_gout[enc_last],
                &mut losses,
                slots(1),
            );
            backward(
                e,
                &p.enc,
                enc_grads,
                &xb,
                r,
                &enc_bufs,
                &mut enc_gout,
                None,
                enc_drop,
            );
            if cfg.l2 > 0.0 {
                let layers = p.enc.iter().zip(p.enc_grads.iter_mut());
                for (l, g) in layers.chain(p.dec.iter().zip(p.dec_grads.iter_mut())) {
                    let models = Blocks {
                        count: live,
                        stride: l.strides[0],
                    };
                    let n = l.fan_in * l.fan_out;
                    e.l2(&l.w, &mut g.w, n, models, cfg.l2, &mut losses, slots(2));
                }
            }
            p.update(e, &cfg, &mut norm, ((t + s + 1) as u32, live));
        }
        let sums = e.read(&losses, count * CHUNK * SLOTS)?;
        let per_step = started.elapsed().as_secs_f64() / len as f64;
        let mut ended = Vec::new();
        for (i, m) in members.iter_mut().enumerate() {
            if m.done {
                continue;
            }
            let mine = &sums[i * CHUNK * SLOTS..][..len * SLOTS];
            for step_sums in mine.chunks_exact(SLOTS) {
                m.sums.extend_from_slice(step_sums);
                m.seconds += per_step;
                m.steps += 1;
                if m.steps % m.batches != 0 {
                    continue;
                }
                let epoch = m.steps / m.batches - 1;
                let stats = epoch_stats(&m.sums, m.rows, m.batches, cfg.beta, m.seconds);
                m.sums.clear();
                m.seconds = 0.0;
                let observe = |epoch: usize, stats: &EpochStats| observer(i, epoch, stats);
                let position = (epoch, epoch + 1 == m.epochs);
                let (history, patience) = (&mut m.history, &mut m.patience);
                if end_epoch(
                    &m.config,
                    history,
                    patience,
                    position,
                    stats,
                    Some(&observe),
                )? {
                    // Only ever at the chunk's last step: chunks end where a model may end.
                    m.done = true;
                    ended.push(i);
                    break;
                }
            }
        }
        let mut vaes: Vec<&mut Vae> = group.iter_mut().map(|(v, _)| v).collect();
        p.download(e, &ended, &mut vaes)?;
        t += len;
    }
    for ((vae, _), m) in group.iter_mut().zip(members) {
        vae.history = m.history;
    }
    Ok(())
}
