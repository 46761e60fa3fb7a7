//! The fitted VAE: its layers, scaler and training history.

use std::ops::ControlFlow;

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::columns::Columns;
use super::heads::Heads;
use super::many::FitJob;
use super::train::{train, EpochObserver, EpochStats, History};
use super::{Activation, BiasInit, Generation, Init, Likelihood, Sampling, VaeConfig};
use crate::check;
use crate::engine::{Backend, CpuEngine, Device, Engine};
use crate::error::{Error, Result};
use crate::rng::{Purpose, Stream};
use crate::scale::Scaler;

/// One dense layer: `act(x W + b)`, `W` stored `fan_in x fan_out`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Weights, `fan_in x fan_out`.
    pub w: Array2<f32>,
    /// Bias, `fan_out`.
    pub b: Array1<f32>,
    /// Nonlinearity applied after the affine map.
    pub activation: Activation,
}

impl Dense {
    /// A freshly initialised layer; draws come from `stream`.
    pub(crate) fn init(
        fan_in: usize,
        fan_out: usize,
        activation: Activation,
        init: Init,
        bias: BiasInit,
        stream: Stream,
    ) -> Dense {
        let w = Array2::from_shape_fn((fan_in, fan_out), |(i, j)| {
            let index = (i * fan_out + j) as u64;
            match init {
                Init::XavierUniform => {
                    let a = (6.0 / (fan_in + fan_out) as f32).sqrt();
                    a * (2.0 * stream.uniform_at(index) - 1.0)
                }
                Init::HeNormal => (2.0 / fan_in as f32).sqrt() * stream.normal_at(index),
            }
        });
        let b = Array1::from_elem(
            fan_out,
            match bias {
                BiasInit::Zeros => 0.0,
                BiasInit::Ones => 1.0,
            },
        );
        Dense { w, b, activation }
    }
}

/// A variational auto-encoder fitted to the rows of one class.
///
/// The encoder maps a row to `[mu | logvar]` (the last encoder layer is the linear head of width
/// `2 * latent`); the decoder maps a latent vector to the reconstruction. Rows go in and come out
/// in the original units: the fitted [`Scaler`] is applied on the way in and inverted on the way
/// out. The network models the columns that vary within the class ([`Columns`]): a column that
/// is constant in the training rows is copied into every output row, a column with exactly two
/// values is a yes/no variable (a two-way softmax head, so its draws take one of the two), a
/// column of whole numbers is rounded, and generated values can be clipped to each column's
/// observed range.
///
/// ```
/// use ndarray::Array2;
/// use smrt::{Vae, VaeConfig};
///
/// // 40 rows on a noisy line.
/// let x = Array2::from_shape_fn((40, 2), |(i, j)| i as f32 * 0.1 + j as f32 + (i % 3) as f32 * 0.01);
/// let config = VaeConfig { epochs: 20, min_steps: 0, ..VaeConfig::default() };
/// let vae = Vae::fit(x.view(), &config)?;
/// let synthetic = vae.generate(5, 42)?;
/// assert_eq!(synthetic.dim(), (5, 2));
/// assert!(vae.history().epochs.len() <= 20);
/// # Ok::<(), smrt::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Vae {
    pub(crate) config: VaeConfig,
    pub(crate) scaler: Scaler,
    pub(crate) encoder: Vec<Dense>,
    pub(crate) decoder: Vec<Dense>,
    pub(crate) latent: usize,
    pub(crate) history: History,
    pub(crate) columns: Columns,
    /// The learned log-variance of each modelled column ([`Likelihood::GaussianLearned`]).
    pub(crate) output_logvar: Option<Array1<f32>>,
    /// The categorical columns, one softmax head each after the numeric columns (the two-valued
    /// numeric columns' heads follow them: [`Vae::network_heads`]).
    pub(crate) heads: Heads,
    /// The mode [`Generation::Auto`] draws with, chosen when the model was fitted.
    pub(crate) preferred: Option<Generation>,
}

impl Vae {
    /// Fits a VAE to the rows of `x` on the device [`Backend::Auto`] picks (a hardware GPU if
    /// there is one, else the CPU engine). The choice is made, and a GPU opened, on every call:
    /// for repeated work resolve a [`Device`] once and use [`Vae::fit_on`].
    pub fn fit(x: ArrayView2<'_, f32>, config: &VaeConfig) -> Result<Vae> {
        Vae::fit_on(&Device::new(Backend::Auto)?, x, config)
    }

    /// Fits a VAE to the rows of `x` on `device`.
    pub fn fit_on(device: &Device, x: ArrayView2<'_, f32>, config: &VaeConfig) -> Result<Vae> {
        Vae::fit_job(device, &FitJob::new(x, config.clone()), None)
    }

    /// [`Vae::fit_on`], calling `observer` after every epoch (for progress displays).
    pub fn fit_observed(
        device: &Device,
        x: ArrayView2<'_, f32>,
        config: &VaeConfig,
        observer: EpochObserver<'_>,
    ) -> Result<Vae> {
        Vae::fit_job(device, &FitJob::new(x, config.clone()), Some(observer))
    }
    /// Fits a VAE to rows with numeric columns `x` and categorical columns `codes` (one row of
    /// codes per row of `x`; see [`Heads`]): each categorical column is one-hot on the way in
    /// and a softmax head, trained with categorical cross-entropy, on the way out.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use smrt::{Device, Sampling, Vae, VaeConfig};
    ///
    /// let x = Array2::from_shape_fn((40, 1), |(i, _)| i as f32 * 0.1);
    /// let codes = Array2::from_shape_fn((40, 1), |(i, _)| (i % 3) as u32 * 2); // codes 0, 2, 4
    /// let config = VaeConfig { epochs: 20, min_steps: 0, ..VaeConfig::default() };
    /// let vae = Vae::fit_mixed_on(&Device::Cpu, x.view(), codes.view(), &config)?;
    /// let (rows, cats, _) = vae.sample_mixed_on(&Device::Cpu, x.view(), codes.view(), 10, 1, &Sampling::default())?;
    /// assert_eq!((rows.nrows(), cats.ncols()), (10, 1));
    /// assert!(cats.iter().all(|c| [0, 2, 4].contains(c)));
    /// # Ok::<(), smrt::Error>(())
    /// ```
    pub fn fit_mixed_on(
        device: &Device,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
        config: &VaeConfig,
    ) -> Result<Vae> {
        let job = FitJob::new(x.view(), config.clone()).with_codes(codes.view());
        Vae::fit_job(device, &job, None)
    }

    /// Fits `job` on `device`, with an optional observer.
    pub(crate) fn fit_job(
        device: &Device,
        job: &FitJob<'_>,
        observer: Option<EpochObserver<'_>>,
    ) -> Result<Vae> {
        match device {
            Device::Cpu => Vae::fit_inner(&mut CpuEngine::new(), job, observer),
            Device::Gpu(gpu) => Vae::fit_inner(&mut gpu.engine()?, job, observer),
        }
    }

    /// Fits a VAE to the rows of `x` on `engine`.
    pub fn fit_with<E: Engine>(
        engine: &mut E,
        x: ArrayView2<'_, f32>,
        config: &VaeConfig,
    ) -> Result<Vae> {
        Vae::fit_inner(engine, &FitJob::new(x, config.clone()), None)
    }

    fn fit_inner<E: Engine>(
        engine: &mut E,
        job: &FitJob<'_>,
        observer: Option<EpochObserver<'_>>,
    ) -> Result<Vae> {
        let mut prepared = Vae::prepare(job)?;
        let observe = |_: usize, epoch: usize, stats: &EpochStats| match observer {
            Some(o) => o(epoch, stats),
            None => ControlFlow::Continue(()),
        };
        train(engine, &mut [&mut prepared], &observe)?;
        Ok(prepared.0)
    }

    /// An untrained model of the job's settings for its rows (checked, columns observed, scaler
    /// fitted, layers initialised), and the rows as the network sees them.
    pub(crate) fn prepare(job: &FitJob<'_>) -> Result<(Vae, Array2<f32>)> {
        let (x, codes, config) = (job.x, job.codes, &job.config);
        config.validate()?;
        if codes.nrows() != x.nrows() {
            return Err(Error::ShapeMismatch {
                what: "rows of categorical codes",
                expected: x.nrows(),
                got: codes.nrows(),
            });
        }
        // A table of categorical columns only has no numeric values to check.
        if x.ncols() > 0 || codes.ncols() == 0 {
            check::finite_matrix(x)?;
        }
        if x.nrows() < 2 {
            return Err(Error::ClassTooSmall {
                class: "(the training rows)".into(),
                count: x.nrows(),
                needed: 2,
            });
        }
        let columns = Columns::observe(x, job.binary)?;
        let numeric = columns.modelled().len();
        let scaler = Scaler::fit(config.scaling, columns.select(x).view());
        let heads = job
            .categories
            .clone()
            .unwrap_or_else(|| Heads::observe(codes));
        let features = numeric + heads.with_binary(columns.binary().len()).width();
        let latent = config.latent.resolve(features);
        let (encoder, decoder) = init_layers(config, features, latent);
        let vae = Vae {
            config: config.clone(),
            scaler,
            encoder,
            decoder,
            latent,
            history: History::default(),
            output_logvar: (config.likelihood == Likelihood::GaussianLearned)
                .then(|| Array1::zeros(numeric)),
            columns,
            heads,
            preferred: None,
        };
        let (_, data, _) = vae.network_input(x, codes)?;
        if config.likelihood == Likelihood::Bernoulli {
            let scaled = data.slice(ndarray::s![.., ..numeric]);
            if let Some(v) = scaled.iter().find(|v| !(0.0..=1.0).contains(*v)) {
                return Err(Error::DataModel(format!(
                    "bernoulli likelihood needs values in [0, 1] after scaling, found {v}; use min-max scaling"
                )));
            }
        }
        Ok((vae, data))
    }

    /// The settings it was fitted with.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// Number of features (input and output columns).
    pub fn features(&self) -> usize {
        self.columns.len()
    }

    /// Number of numeric columns the network models as Gaussian (the numeric features neither
    /// constant nor two-valued in the training rows).
    pub fn modelled_features(&self) -> usize {
        self.columns.modelled().len()
    }

    /// Input (and output) columns of the network: the modelled numeric columns, then one
    /// column per category of each head.
    pub(crate) fn network_width(&self) -> usize {
        self.encoder[0].w.nrows()
    }

    /// The network's softmax heads: one per categorical column, then one two-way head per
    /// two-valued numeric column.
    pub(crate) fn network_heads(&self) -> Heads {
        self.heads.with_binary(self.columns.binary().len())
    }

    /// The rows `x` (original units) with categorical codes `codes` as the network takes them:
    /// the modelled numeric columns (original units), the network's input (those columns
    /// scaled, then the one-hot heads) and the codes of the heads (the categorical codes, then
    /// those of the two-valued columns).
    pub(crate) fn network_input(
        &self,
        x: ArrayView2<'_, f32>,
        codes: ArrayView2<'_, u32>,
    ) -> Result<(Array2<f32>, Array2<f32>, Array2<u32>)> {
        let original = self.columns.select(x);
        let numeric = self.scaler.transform(original.view());
        let binary = self.columns.binary_codes(x);
        let codes = ndarray::concatenate(Axis(1), &[codes.reborrow(), binary.view()])
            .expect("a row of codes per row")
            .as_standard_layout()
            .into_owned();
        let hot = self.network_heads().one_hot(codes.view())?;
        let input = ndarray::concatenate(Axis(1), &[numeric.view(), hot.view()])
            .expect("rows of both blocks agree")
            .as_standard_layout()
            .into_owned();
        Ok((original, input, codes))
    }

    /// The mode [`Generation::Auto`] draws with (`None`: the prior; see [`Generation::Auto`]).
    pub fn preferred_generation(&self) -> Option<Generation> {
        self.preferred
    }

    /// The mode this model draws with under `sampling` ([`Generation::Auto`] resolved).
    pub fn resolve_generation(&self, sampling: &Sampling) -> Generation {
        self.resolve(sampling).generation
    }

    /// `sampling` with [`Generation::Auto`] replaced by the mode this model draws with.
    pub(crate) fn resolve(&self, sampling: &Sampling) -> Sampling {
        let mut s = *sampling;
        if s.generation == Generation::Auto {
            s.generation = self.preferred.unwrap_or(Generation::Prior);
        }
        s
    }

    /// The categorical columns (none for a model of numeric columns only). The two-valued
    /// numeric columns' heads are not among them: see [`Columns::binary`].
    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    /// What the model observed of each column: range, whole numbers, constant or modelled.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The learned log-variance of each modelled column, in scaled units
    /// ([`Likelihood::GaussianLearned`]; `None` for the other likelihoods).
    pub fn output_logvar(&self) -> Option<&Array1<f32>> {
        self.output_logvar.as_ref()
    }

    /// Latent size.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// The fitted input scaler (of the modelled columns).
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// Encoder layers; the last is the linear `[mu | logvar]` head.
    pub fn encoder(&self) -> &[Dense] {
        &self.encoder
    }

    /// Decoder layers; the last produces the output logits (Bernoulli) or means (Gaussian).
    pub fn decoder(&self) -> &[Dense] {
        &self.decoder
    }

    /// Per-epoch losses and times of the fit.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Checks that `x` has this model's width and finite values.
    pub(crate) fn check_input(&self, x: ArrayView2<'_, f32>) -> Result<()> {
        // A model of categorical columns only takes rows without numeric values.
        if x.ncols() > 0 || self.heads.is_empty() {
            check::finite_matrix(x)?;
        }
        check::width(x, self.features())
    }
}

/// Codes of no categorical columns, for `rows` rows.
pub(crate) fn no_codes(rows: usize) -> Array2<u32> {
    Array2::zeros((rows, 0))
}

/// The encoder `D -> h1 -> .. -> hn -> 2L` and the decoder `L -> hn -> .. -> h1 -> D`.
pub(crate) fn init_layers(
    cfg: &VaeConfig,
    features: usize,
    latent: usize,
) -> (Vec<Dense>, Vec<Dense>) {
    let mut widths = vec![features];
    widths.extend(&cfg.hidden);
    let enc_out: Vec<usize> = cfg.hidden.iter().copied().chain([2 * latent]).collect();
    let dec_in: Vec<usize> = std::iter::once(latent)
        .chain(cfg.hidden.iter().rev().copied())
        .collect();
    let dec_out: Vec<usize> = cfg.hidden.iter().rev().copied().chain([features]).collect();
    let mut layer_no = 0u32;
    let mut make = |fan_in: usize, fan_out: usize, last: bool| {
        let act = if last {
            Activation::Identity
        } else {
            cfg.activation
        };
        let stream = Stream::new(cfg.seed, Purpose::Init, layer_no);
        layer_no += 1;
        Dense::init(fan_in, fan_out, act, cfg.init, cfg.bias_init, stream)
    };
    let n = enc_out.len();
    let encoder = widths
        .iter()
        .zip(&enc_out)
        .enumerate()
        .map(|(i, (&a, &b))| make(a, b, i + 1 == n))
        .collect();
    let decoder = dec_in
        .iter()
        .zip(&dec_out)
        .enumerate()
        .map(|(i, (&a, &b))| make(a, b, i + 1 == n))
        .collect();
    (encoder, decoder)
}
