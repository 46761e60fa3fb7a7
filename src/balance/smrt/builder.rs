//! [`SmrtBuilder`]: every setting of a [`Smrt`], validated by `build`.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use super::{EpochHook, Smrt};
use crate::engine::{Backend, Device};
use crate::error::{Error, Result};
use crate::scale::Scaling;
use crate::strategy::{Label, Strategy};
use crate::vae::{
    Activation, BiasInit, CategoryDraw, EarlyStopping, EpochStats, Generation, Init, Latent,
    Likelihood, Optimizer, Sampling, Vae, VaeConfig,
};

/// Builds a [`Smrt`]; every VAE setting of [`VaeConfig`] has a method. `build` validates.
#[derive(Debug, Clone)]
pub struct SmrtBuilder<L> {
    pub(super) inner: Smrt<L>,
}

/// One builder method per setting of `self.inner.$part` (the VAE's or the sampling's).
macro_rules! setters {
    ($part:ident; $(#[$doc:meta] $name:ident : $ty:ty => $field:ident),* $(,)?) => {$(
        #[$doc]
        pub fn $name(mut self, value: $ty) -> Self {
            self.inner.$part.$field = value.into();
            self
        }
    )*};
}

impl<L: Label> SmrtBuilder<L> {
    /// Which classes grow, and to what size.
    pub fn strategy(mut self, strategy: Strategy<L>) -> Self {
        self.inner.strategy = strategy;
        self
    }

    /// Shorthand for `strategy(Strategy::Ratio(r))`.
    pub fn ratio(self, r: f32) -> Self {
        self.strategy(Strategy::Ratio(r))
    }

    /// All VAE settings at once.
    pub fn vae(mut self, config: VaeConfig) -> Self {
        self.inner.vae = config;
        self
    }

    setters! { sampling;
        /// Where synthetic rows come from (see [`Generation`]).
        generation: Generation => generation,
        /// Scale of the latent noise of prior, posterior and residual draws (1: as trained).
        temperature: f32 => temperature,
        /// Limit generated values to each column's range in the class (default off).
        clip: bool => clip,
        /// Latent neighbours per row for [`Generation::Interpolate`].
        neighbors: usize => neighbors,
        /// How categorical columns take their value from their softmax heads.
        category: CategoryDraw => category,
    }

    /// Fit each class's model from at most `rows` of its rows, a seeded uniform sample
    /// ([`crate::rng::reservoir_sample`], stream `(seed, Purpose::Sample, class number)`),
    /// where a class has more: training then costs what `rows` rows cost. Generation still
    /// starts from any of the class's rows, and the model knows every category of them, also
    /// those its sample missed. Default: every row.
    pub fn fit_rows(mut self, rows: usize) -> Self {
        self.inner.fit_rows = Some(rows);
        self
    }

    /// The numeric columns that are yes/no variables of the table (see
    /// [`crate::vae::FitJob::binary`]), for rows that are a part of a larger table, as a class's
    /// sample on a cluster is: each class's network models them with a two-way head. Default:
    /// the columns with exactly two values in the rows given. A column given here with more
    /// than two values in a class's rows is an error.
    pub fn binary_columns(mut self, columns: Vec<usize>) -> Self {
        self.inner.binary = Some(columns);
        self
    }

    /// All sampling settings at once.
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.inner.sampling = sampling;
        self
    }

    /// Shuffle the output rows (the origin of each row is still reported); with
    /// [`Balancer::fit_synthetic`](crate::Balancer::fit_synthetic), the synthetic rows among
    /// themselves.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.inner.shuffle = shuffle;
        self
    }

    /// Seed of all randomness: per-class training seeds and generation draws derive from it.
    pub fn seed(mut self, seed: u64) -> Self {
        self.inner.seed = seed;
        self
    }

    /// Where to compute: a hardware GPU when there is one ([`Backend::Auto`], the default), any
    /// GPU adapter, or the CPU engine.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.inner.backend = backend;
        self
    }

    /// Compute on this device: for an application that owns its GPU
    /// ([`crate::engine::Gpu::from_device`]). Takes precedence over [`SmrtBuilder::backend`].
    pub fn device(mut self, device: Device) -> Self {
        self.inner.device = OnceLock::from(device);
        self
    }

    /// Calls `f(class, epoch, losses)` after every training epoch of every class (from the
    /// training threads): for progress displays.
    pub fn on_epoch(mut self, f: impl Fn(&L, usize, &EpochStats) + Send + Sync + 'static) -> Self {
        self.inner.observer = Some(EpochHook(Arc::new(f)));
        self
    }

    /// A flag the caller may set (from any thread, a signal handler's for example) to stop
    /// training between epochs: `fit_resample` then returns [`Error::Interrupted`].
    ///
    /// ```
    /// use std::sync::{atomic::AtomicBool, Arc};
    /// let stop = Arc::new(AtomicBool::new(true)); // already set: the first epoch is the last
    /// let smrt = smrt::Smrt::builder().stop_flag(stop).build()?;
    /// let x = ndarray::Array2::from_shape_fn((30, 2), |(i, j)| (i * 2 + j) as f32);
    /// let y: Vec<u8> = (0..30).map(|i| u8::from(i >= 24)).collect();
    /// assert!(matches!(smrt.fit_resample(x.view(), &y), Err(smrt::Error::Interrupted)));
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.inner.stop = Some(stop);
        self
    }

    /// A model already fitted for `class`: used instead of training one.
    pub fn prefit(mut self, class: L, model: Vae) -> Self {
        self.inner.models.insert(class, model);
        self
    }

    setters! { vae;
        /// Widths of the hidden layers.
        hidden: Vec<usize> => hidden,
        /// Latent size: a count or a fraction of the features.
        latent: Latent => latent,
        /// Hidden nonlinearity.
        activation: Activation => activation,
        /// Weight initialisation.
        init: Init => init,
        /// Bias initialisation.
        bias_init: BiasInit => bias_init,
        /// Optimizer.
        optimizer: Optimizer => optimizer,
        /// Learning rate.
        learning_rate: f32 => learning_rate,
        /// Passes over the class's rows, within the step budget.
        epochs: usize => epochs,
        /// The fewest optimizer steps of a fit.
        min_steps: usize => min_steps,
        /// The most optimizer steps of a fit.
        max_steps: usize => max_steps,
        /// Mini-batch size.
        batch_size: usize => batch_size,
        /// L2 penalty on weights.
        l2: f32 => l2,
        /// Global gradient-norm clipping (`None` disables).
        clip_norm: Option<f32> => clip_norm,
        /// Dropout rate on hidden activations.
        dropout: f32 => dropout,
        /// Early stopping (`None` disables).
        early_stopping: Option<EarlyStopping> => early_stopping,
        /// KL weight.
        beta: f32 => beta,
        /// Reconstruction likelihood.
        likelihood: Likelihood => likelihood,
        /// Input scaling.
        scaling: Scaling => scaling,
    }

    /// Validates every setting and returns the balancer.
    pub fn build(self) -> Result<Smrt<L>> {
        if self.inner.fit_rows.is_some_and(|r| r < 2) {
            return Err(Error::config("fit_rows", "a model needs at least 2 rows"));
        }
        self.inner.strategy.validate()?;
        self.inner.vae.validate()?;
        self.inner.sampling.validate()?;
        Ok(self.inner)
    }
}
