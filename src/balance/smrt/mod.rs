//! SMRT: one VAE per class that needs rows, synthetic rows drawn from it.

mod auto;
mod builder;

pub use builder::SmrtBuilder;

use auto::Choice;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ndarray::{Array2, ArrayView2, Axis};

use super::{Balancer, Categories, Classes, Job, Origin, Output, Part, Resampled};
use crate::engine::{Backend, Device};
use crate::error::{Error, Result};
use crate::rng::{permutation, Purpose, Stream};
use crate::shard::Shard;
use crate::strategy::{Label, Strategy};
use crate::vae::no_codes;
use crate::vae::{EpochStats, FitJob, Generation, Heads, Sampling, Vae, VaeConfig};

/// The SMRT balancer (Synthetic Minority Reconstruction Technique).
///
/// For each class the [`Strategy`] asks to grow, trains a VAE on that class's rows (or reuses a
/// model passed in) and draws synthetic rows from it.
///
/// ```
/// use ndarray::Array2;
/// use smrt::{Smrt, Strategy};
///
/// // 60 rows of class "a" around (0, 0), 12 of class "b" around (4, 4).
/// let x = Array2::from_shape_fn((72, 2), |(i, j)| {
///     let centre = if i < 60 { 0.0 } else { 4.0 };
///     centre + ((i * 7 + j * 3) % 10) as f32 * 0.1
/// });
/// let y: Vec<&str> = (0..72).map(|i| if i < 60 { "a" } else { "b" }).collect();
/// let smrt = Smrt::builder().strategy(Strategy::Ratio(0.5)).epochs(30).seed(7).build()?;
/// let out = smrt.fit_resample(x.view(), &y)?;
/// assert_eq!(out.class_counts()[&"b"], 30);
/// assert_eq!(out.x.slice(ndarray::s![..72, ..]), x); // input rows first, unchanged
/// # Ok::<(), smrt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Smrt<L> {
    strategy: Strategy<L>,
    vae: VaeConfig,
    sampling: Sampling,
    shuffle: bool,
    seed: u64,
    backend: Backend,
    /// Resolved from `backend` on first use unless given.
    device: OnceLock<Device>,
    observer: Option<EpochHook<L>>,
    /// Set by the caller to stop every fit between epochs.
    stop: Option<Arc<AtomicBool>>,
    models: BTreeMap<L, Vae>,
    /// Fit each class from at most this many of its rows.
    fit_rows: Option<usize>,
    /// The table's yes/no columns, where the rows given are a part of it.
    binary: Option<Vec<usize>>,
}

impl<L: Label> Smrt<L> {
    /// A builder with the defaults: [`Strategy::NotMajority`], [`VaeConfig::default`],
    /// [`Sampling::default`], no shuffle, seed 0.
    pub fn builder() -> SmrtBuilder<L> {
        SmrtBuilder {
            inner: Smrt {
                strategy: Strategy::NotMajority,
                vae: VaeConfig::default(),
                sampling: Sampling::default(),
                shuffle: false,
                seed: 0,
                backend: Backend::Auto,
                device: OnceLock::new(),
                observer: None,
                stop: None,
                models: BTreeMap::new(),
                fit_rows: None,
                binary: None,
            },
        }
    }

    /// Where it computes: the device given to the builder, or the one its backend resolves to
    /// (once; later calls and every `fit_resample` reuse it).
    pub fn device(&self) -> Result<Device> {
        Device::once(&self.device, self.backend)
    }

    /// The VAE settings used for every class.
    pub fn vae_config(&self) -> &VaeConfig {
        &self.vae
    }

    /// How synthetic rows are drawn from each class's model.
    pub fn sampling(&self) -> &Sampling {
        &self.sampling
    }

    /// Balances `x` (rows) with labels `y` (also available through [`Balancer`]).
    pub fn fit_resample(&self, x: ArrayView2<'_, f32>, y: &[L]) -> Result<Resampled<L>> {
        self.resample(x, None, y, Part::All)
    }

    fn resample(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Option<Categories<'_>>,
        y: &[L],
        part: Part,
    ) -> Result<Resampled<L>> {
        let classes = Classes::of_mixed(x, categories.as_ref(), y)?;
        let heads = categories.map_or(0, |c| c.codes.ncols());
        let to_add = self.strategy.samples_to_add(&classes.counts())?;
        for (label, model) in &self.models {
            if model.features() != x.ncols() || model.heads().len() != heads {
                return Err(Error::DataModel(format!(
                    "the model passed in for class {label:?} has {} numeric and {} categorical columns, the data {} and {heads}",
                    model.features(),
                    model.heads().len(),
                    x.ncols()
                )));
            }
        }

        let jobs = classes.jobs(&to_add, part);
        for job in &jobs {
            if job.rows.len() < 2 && !self.models.contains_key(job.label) {
                return Err(Error::ClassTooSmall {
                    class: format!("{:?}", job.label),
                    count: job.rows.len(),
                    needed: 2,
                });
            }
        }
        if let (true, Part::Synthetic(shard)) = (self.shuffle, part) {
            if shard != Shard::ALL {
                return Err(Error::config(
                    "shuffle",
                    "shuffled rows cannot be cut into shards that add up to one run",
                ));
            }
        }
        // A shard's classes outside its slice are not even fitted.
        let jobs: Vec<Job<'_, L>> = jobs.into_iter().filter(|j| !j.slice.is_empty()).collect();
        let device = self.device()?;
        let codes = categories.map(|c| c.codes);
        let class_codes = |rows: &[usize]| {
            codes.map_or_else(|| no_codes(rows.len()), |c| c.select(Axis(0), rows))
        };
        let wanted: Vec<(usize, &L, &[usize])> =
            jobs.iter().map(|j| (j.class_no, j.label, j.rows)).collect();
        let fitted = self.class_models(&device, x, codes, &wanted)?;
        // The output: the input rows, then each class's draws, written chunk by chunk straight
        // into it (no buffer of a class's synthetic rows beside the output).
        let synthetic = jobs.iter().map(|j| j.slice.len()).sum::<usize>();
        let mut out = Output::with_input(x, y, synthetic, part);
        let mut all_codes: Vec<u32> = Vec::with_capacity((out.y.len() + synthetic) * heads);
        if let (Some(c), Part::All) = (codes, part) {
            all_codes.extend(c.iter());
        }
        let mut models = BTreeMap::new();
        let seeds = Stream::new(self.seed, Purpose::ClassSeed, 0);
        for (job, model) in jobs.iter().zip(fitted) {
            let (label, rows, slice) = (job.label, job.rows, &job.slice);
            let class_x = x.select(Axis(0), rows);
            let class_codes = class_codes(rows);
            let gen_seed = seeds.derive_seed(2 * job.class_no as u64 + 1);
            let drawer = model.drawer(
                &device,
                class_x.view(),
                class_codes.view(),
                gen_seed,
                &self.sampling,
            )?;
            for start in slice.clone().step_by(DRAW_CHUNK) {
                crate::interrupt::check()?;
                let (rows_out, codes_out, sources) =
                    drawer.rows(start..(start + DRAW_CHUNK).min(slice.end))?;
                out.data.extend(rows_out.iter());
                all_codes.extend(codes_out.iter());
                out.origin
                    .extend(sources.into_iter().map(|s| Origin::Synthetic {
                        source: s.map(|s| rows[s]),
                    }));
            }
            drop(drawer);
            out.y
                .extend(std::iter::repeat_n(L::clone(label), slice.len()));
            models.insert(L::clone(label), model);
        }
        let codes =
            Array2::from_shape_vec((out.y.len(), heads), all_codes).expect("rows x heads codes");
        let mut out = out.finish(codes, models);
        if self.shuffle {
            let total = out.y.len();
            let order: Vec<usize> =
                permutation(&Stream::new(self.seed, Purpose::OutputShuffle, 0), total)
                    .into_iter()
                    .map(|i| i as usize)
                    .collect();
            out.x = out.x.select(Axis(0), &order);
            out.codes = out.codes.select(Axis(0), &order);
            out.y = order.iter().map(|&i| out.y[i].clone()).collect();
            out.origin = order.iter().map(|&i| out.origin[i]).collect();
        }
        Ok(out)
    }

    /// The model of each class of `wanted` (class number in label order, label, its rows of
    /// `x`): the one passed in with [`SmrtBuilder::prefit`], or one trained on the class's rows
    /// with the seed derived for it. On the CPU the classes train side by side, one per core;
    /// on a GPU all of them together ([`Vae::fit_many`]): one class alone leaves a device idle.
    fn class_models(
        &self,
        device: &Device,
        x: ArrayView2<'_, f32>,
        codes: Option<ArrayView2<'_, u32>>,
        wanted: &[(usize, &L, &[usize])],
    ) -> Result<Vec<Vae>> {
        // The table's yes/no columns: a column that only a class holds two values of is none.
        let binary = match &self.binary {
            Some(given) => given.clone(),
            None => crate::vae::two_valued_columns(x),
        };
        let fits: Vec<Option<ClassFit>> = wanted
            .iter()
            .map(|&(class_no, label, rows)| {
                (!self.models.contains_key(label))
                    .then(|| self.class_fit(x, codes, &binary, rows, class_no))
            })
            .collect();
        let trained = self.fit_classes(device, &fits, wanted)?;
        // The choice of generation draws from each held-out model: on the CPU, a class per core.
        let pairs: Vec<_> = fits.iter().zip(&trained).collect();
        let choose = |&(fit, trained): &(&Option<ClassFit>, &Option<Trained>)| match (fit, trained)
        {
            (Some(f), Some((_, held))) => self.preferred(device, f, held.as_ref()),
            _ => Ok(None),
        };
        let chosen: Vec<Result<Option<Generation>>> = match device {
            Device::Cpu => crate::parallel::parallel_map(&pairs, choose),
            Device::Gpu(_) => pairs.iter().map(choose).collect(),
        };
        let trained = (trained.into_iter().zip(chosen)).map(|(t, preferred)| {
            let preferred = preferred?;
            Ok(t.map(|(mut model, _)| {
                model.preferred = preferred;
                model
            }))
        });
        let trained = trained.collect::<Result<Vec<Option<Vae>>>>()?;
        let models = trained.into_iter().zip(wanted);
        Ok(models
            .map(|(m, &(_, label, _))| m.unwrap_or_else(|| self.models[label].clone()))
            .collect())
    }

    /// [`Generation::Auto`]'s choice for a class, from `held` (the model of its split, if it
    /// has one); `None` for the other generations.
    fn preferred(
        &self,
        device: &Device,
        fit: &ClassFit,
        held: Option<&Vae>,
    ) -> Result<Option<Generation>> {
        if self.sampling.generation != Generation::Auto {
            return Ok(None);
        }
        Ok(Some(match (&fit.choice, held) {
            (Some(choice), Some(held)) => self.choose(device, held, choice)?,
            _ => Generation::Prior,
        }))
    }

    /// Every fit of `fits` (the class's model, and its held-out model for the choice of
    /// generation) in one [`Vae::fit_many`]: on the CPU a fit per core, on a GPU all together.
    fn fit_classes(
        &self,
        device: &Device,
        fits: &[Option<ClassFit>],
        wanted: &[(usize, &L, &[usize])],
    ) -> Result<Vec<Option<Trained>>> {
        // Jobs in order: each class's model, then its held-out model if any. `whose[j]`: the
        // label job `j` reports epochs for (held-out fits report none, as alone).
        let mut jobs = Vec::new();
        let mut whose = Vec::new();
        for (fit, &(_, label, _)) in fits.iter().zip(wanted) {
            let Some(f) = fit else { continue };
            jobs.push(f.job());
            whose.push(Some(label));
            if let Some(c) = &f.choice {
                jobs.push(c.job(&f.config).with_binary(&f.binary));
                whose.push(None);
            }
        }
        let observe = |j: usize, epoch: usize, stats: &EpochStats| match whose[j] {
            Some(label) => self.observe(label, epoch, stats),
            None => self.stop_asked(),
        };
        let mut models = Vae::fit_many_observed(device, &jobs, Some(&observe))?.into_iter();
        let mut next = || models.next().expect("one per job");
        let pairs = fits.iter().map(|f| {
            f.as_ref()
                .map(|f| (next(), f.choice.as_ref().map(|_| next())))
        });
        Ok(pairs.collect())
    }

    /// Reports an epoch of `label`'s fit to the observer, and whether to go on.
    fn observe(&self, label: &L, epoch: usize, stats: &EpochStats) -> ControlFlow<()> {
        if let Some(EpochHook(f)) = &self.observer {
            f(label, epoch, stats);
        }
        self.stop_asked()
    }

    /// Whether the caller has set the stop flag.
    fn stop_asked(&self) -> ControlFlow<()> {
        match &self.stop {
            Some(stop) if stop.load(Ordering::Relaxed) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }

    /// What training class number `class_no` on its `rows` of `x` takes: the settings with the
    /// class's seed, the rows themselves (a uniform sample of them beyond the fit's budget of
    /// rows), and for [`Generation::Auto`] the split that chooses the generation.
    fn class_fit(
        &self,
        x: ArrayView2<'_, f32>,
        codes: Option<ArrayView2<'_, u32>>,
        binary: &[usize],
        rows: &[usize],
        class_no: usize,
    ) -> ClassFit {
        let seeds = Stream::new(self.seed, Purpose::ClassSeed, 0);
        let config = VaeConfig {
            seed: seeds.derive_seed(2 * class_no as u64),
            ..self.vae.clone()
        };
        // A class larger than the fit's budget of rows is fitted from a uniform sample of them,
        // knowing every category of all of them.
        let (kept, categories): (Vec<usize>, _) = match self.fit_rows {
            Some(keep) if rows.len() > keep => {
                let stream = Stream::new(self.seed, Purpose::Sample, class_no as u32);
                let picked = crate::rng::reservoir_sample(&stream, rows.len(), keep);
                let all = codes.map(|c| Heads::observe(c.select(Axis(0), rows).view()));
                (picked.into_iter().map(|i| rows[i]).collect(), all)
            }
            _ => (rows.to_vec(), None),
        };
        let class_x = x.select(Axis(0), &kept);
        let class_codes = codes.map_or_else(|| no_codes(kept.len()), |c| c.select(Axis(0), &kept));
        let choice = (self.sampling.generation == Generation::Auto)
            .then(|| Choice::split(class_x.view(), class_codes.view(), &config))
            .flatten();
        ClassFit {
            x: class_x,
            codes: class_codes,
            categories,
            binary: binary.to_vec(),
            config,
            choice,
        }
    }

    /// Trains the models `fit_resample` would train, without generating: one per class the
    /// strategy grows, or one per class of `classes` when given. Models passed with
    /// [`SmrtBuilder::prefit`] are returned as they are. The same seed gives the same models as
    /// `fit_resample`.
    pub fn fit_models(
        &self,
        x: ArrayView2<'_, f32>,
        y: &[L],
        classes: Option<&[L]>,
    ) -> Result<BTreeMap<L, Vae>> {
        self.fit_models_mixed(x, None, y, classes)
    }

    /// [`Smrt::fit_models`] for rows with categorical columns too.
    pub fn fit_models_mixed(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Option<Categories<'_>>,
        y: &[L],
        classes: Option<&[L]>,
    ) -> Result<BTreeMap<L, Vae>> {
        if let Some(c) = &categories {
            c.check(x.nrows())?;
        }
        let all = Classes::of_mixed(x, categories.as_ref(), y)?;
        let wanted: Vec<L> = match classes {
            Some(c) => {
                for l in c {
                    if !all.rows.contains_key(l) {
                        return Err(Error::UnknownClass(format!("{l:?}")));
                    }
                }
                c.to_vec()
            }
            None => self
                .strategy
                .samples_to_add(&all.counts())?
                .into_keys()
                .collect(),
        };
        let mut chosen = Vec::new();
        for (class_no, (label, rows)) in all.rows.iter().enumerate() {
            if !wanted.contains(label) {
                continue;
            }
            if rows.len() < 2 && !self.models.contains_key(label) {
                return Err(Error::ClassTooSmall {
                    class: format!("{label:?}"),
                    count: rows.len(),
                    needed: 2,
                });
            }
            chosen.push((class_no, *label, &rows[..]));
        }
        let device = self.device()?;
        let codes = categories.map(|c| c.codes);
        let fitted = self.class_models(&device, x, codes, &chosen)?;
        let labels = chosen.iter().map(|(_, l, _)| L::clone(l));
        Ok(labels.zip(fitted).collect())
    }
}

/// A class's trained model, and the model of its held-out split if it has one.
type Trained = (Vae, Option<Vae>);

/// The rows and settings of one class's fit.
struct ClassFit {
    x: Array2<f32>,
    codes: Array2<u32>,
    /// Every category of the class's rows, where the fit sees a sample of them: the model
    /// then encodes any of its rows when it draws.
    categories: Option<Heads>,
    /// The table's yes/no columns ([`FitJob::binary`]).
    binary: Vec<usize>,
    config: VaeConfig,
    /// The held-out split that chooses the generation ([`Generation::Auto`]), if the class
    /// has one.
    choice: Option<Choice>,
}

impl ClassFit {
    /// The fit of the class's model.
    fn job(&self) -> FitJob<'_> {
        let job = FitJob::new(self.x.view(), self.config.clone())
            .with_codes(self.codes.view())
            .with_binary(&self.binary);
        match &self.categories {
            Some(c) => job.with_categories(c.clone()),
            None => job,
        }
    }
}

/// Synthetic rows drawn at a time when a class's rows join the output.
const DRAW_CHUNK: usize = 1 << 18;

/// What [`SmrtBuilder::on_epoch`] calls: class, epoch, losses.
type OnEpoch<L> = dyn Fn(&L, usize, &EpochStats) + Send + Sync;

/// A callback after each epoch of each class.
#[derive(Clone)]
struct EpochHook<L>(Arc<OnEpoch<L>>);

impl<L> std::fmt::Debug for EpochHook<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochHook")
    }
}

impl<L: Label> Balancer<L> for Smrt<L> {
    fn fit_resample(&self, x: ArrayView2<'_, f32>, y: &[L]) -> Result<Resampled<L>> {
        Smrt::fit_resample(self, x, y)
    }

    /// SMRT with categorical columns: each class's VAE takes them one-hot and gives one softmax
    /// head per column ([`Vae::fit_mixed_on`]); synthetic rows take their categories as
    /// [`Sampling::category`] and [`Generation`] say, always among the class's own.
    fn fit_resample_mixed(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
    ) -> Result<Resampled<L>> {
        categories.check(x.nrows())?;
        if categories.codes.ncols() == 0 {
            return self.fit_resample(x, y);
        }
        self.resample(x, Some(categories), y, Part::All)
    }

    fn fit_synthetic(
        &self,
        x: ArrayView2<'_, f32>,
        categories: Categories<'_>,
        y: &[L],
        shard: Shard,
    ) -> Result<Resampled<L>> {
        categories.check(x.nrows())?;
        let categories = (categories.codes.ncols() > 0).then_some(categories);
        self.resample(x, categories, y, Part::Synthetic(shard))
    }
}
