//! Settings of one VAE: architecture, optimisation, likelihood, scaling.

use serde::{Deserialize, Serialize};

pub use crate::engine::{Activation, Likelihood, Optimizer};
use crate::error::{Error, Result};
use crate::scale::Scaling;

/// Weight initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// Glorot & Bengio (2010): `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    #[default]
    XavierUniform,
    /// He et al. (2015): `N(0, 2 / fan_in)`.
    HeNormal,
}

/// Bias initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BiasInit {
    /// All biases 0.
    #[default]
    Zeros,
    /// All biases 1.
    Ones,
}

/// Size of the latent space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Latent {
    /// A fixed number of latent dimensions.
    Count(usize),
    /// A fraction of the number of features, rounded up, at least 1.
    Fraction(f32),
}

impl Latent {
    /// The latent width for `features` input columns.
    pub fn resolve(self, features: usize) -> usize {
        match self {
            Latent::Count(n) => n,
            Latent::Fraction(f) => ((f * features as f32).ceil() as usize).max(1),
        }
    }
}

/// Early stopping on the epoch loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EarlyStopping {
    /// An epoch counts as an improvement when its loss is below the best so far by more than this.
    pub min_delta: f32,
    /// Training stops after this many epochs in a row without improvement.
    pub patience: usize,
}

/// Where synthetic rows are drawn from. `x_i` is a row of the class chosen uniformly at random,
/// `(mu_i, sigma_i)` its posterior, `t` the [`Sampling::temperature`], `eps ~ N(0, I)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// Decode `z = t eps`: new rows from the whole learned distribution of the class.
    Prior,
    /// Decode `z = mu_i + t sigma_i eps`: rows like `x_i` as the model reconstructs it.
    Posterior,
    /// `x_i + dec(mu_i + t sigma_i eps) - dec(mu_i)`: the real row moved along a direction the
    /// model learned, keeping the detail its decoder cannot reproduce. `t = 0` gives `x_i`.
    /// A categorical column keeps `x_i`'s category unless the head's most probable category at
    /// `z` differs from the one at `mu_i`; then it takes the one at `z`.
    Residual,
    /// Each class's model draws as [`Generation::Prior`] or [`Generation::PriorResidual`],
    /// whichever [`crate::Smrt`] chose for it when it fitted the model: a model fitted on four
    /// fifths of the class draws with each, and prior-residual is kept where its rows are nearer
    /// the held-out fifth (energy distance, in the fitted rows' standard units) by more than two
    /// standard errors of the held-out rows' sampling; otherwise the prior. Classes of fewer
    /// than 10 rows, and models fitted without a choice, draw from the prior. The default: the
    /// prior wins on small, low-dimensional classes and prior-residual where the decoder cannot
    /// carry the features (QUALITY.md); this lets each class show which it is, where its rows
    /// can.
    #[default]
    Auto,
    /// `x_i + dec(t eps) - dec(mu_i)`: a prior draw carrying the detail of a real row that the
    /// decoder cannot reproduce. Where the decoder reconstructs the class well this is a prior
    /// draw; where it cannot (many features, little structure) the rows keep real detail.
    PriorResidual,
    /// Decode `z = mu_i + u (mu_j - mu_i)`, `u ~ U(0, 1)`, with `x_j` one of the
    /// [`Sampling::neighbors`] nearest rows of `x_i` in latent space (posterior means): SMOTE's
    /// interpolation, in the model's latent space.
    Interpolate,
}

/// How synthetic rows are drawn from a fitted [`crate::Vae`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Sampling {
    /// Where rows come from.
    pub generation: Generation,
    /// Scales the latent noise `eps` of prior, posterior and residual draws: 1 samples the model
    /// as trained, below 1 stays closer to the real rows (residual) or to the centre (prior).
    pub temperature: f32,
    /// Limit every generated value to the range its column has in the class's training rows.
    /// Off by default: on the quality suite clipping cost more than it saved (QUALITY.md), since
    /// the rows beyond a small class's observed range are part of what widens its region.
    pub clip: bool,
    /// Latent neighbours of each row that [`Generation::Interpolate`] chooses among.
    pub neighbors: usize,
    /// How a categorical column's value is taken from its softmax head.
    #[serde(default)]
    pub category: CategoryDraw,
}

/// How a generated row's category is taken from a categorical column's softmax head (residual
/// and prior-residual draws keep the source row's category unless the head's arg-max moves; see
/// [`Generation::Residual`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CategoryDraw {
    /// A draw from the softmax: categories keep the frequencies the model learned.
    Sample,
    /// The most probable category (the default: on the quality suite's mixed sets it gave the
    /// same or a better score than a draw on 9 of 12 set and seed pairs, QUALITY.md).
    #[default]
    Argmax,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            generation: Generation::default(),
            temperature: 1.0,
            clip: false,
            neighbors: 5,
            category: CategoryDraw::Argmax,
        }
    }
}

impl Sampling {
    /// The default settings with `generation`.
    pub fn of(generation: Generation) -> Sampling {
        Sampling {
            generation,
            ..Sampling::default()
        }
    }

    /// Checks every setting's domain.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::config(
                "temperature",
                format!("{} must be >= 0", self.temperature),
            ));
        }
        if self.neighbors == 0 || self.neighbors > crate::engine::KNN_MAX_K {
            return Err(Error::config(
                "neighbors",
                format!(
                    "{} must be in 1..={}",
                    self.neighbors,
                    crate::engine::KNN_MAX_K
                ),
            ));
        }
        Ok(())
    }
}

/// All settings of one VAE. `VaeConfig::default()` works on ordinary tabular data without tuning.
///
/// The defaults were chosen by measurement on 2-D Gaussian blobs and the digits data (see the crate
/// README, "How the defaults were chosen").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Widths of the encoder's hidden layers; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Latent size.
    pub latent: Latent,
    /// Hidden-layer nonlinearity.
    pub activation: Activation,
    /// Weight initialisation.
    pub init: Init,
    /// Bias initialisation.
    pub bias_init: BiasInit,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Learning rate.
    pub learning_rate: f32,
    /// Passes over the class's rows, before the step budget: a fit runs `epochs`, raised to reach
    /// `min_steps` optimizer steps and lowered to stay within `max_steps` (whole epochs, at least
    /// one). See [`VaeConfig::epochs_for`].
    pub epochs: usize,
    /// The fewest optimizer steps a fit takes, however small the class.
    pub min_steps: usize,
    /// The most optimizer steps a fit takes, however large the class.
    pub max_steps: usize,
    /// Rows per mini-batch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// L2 penalty `0.5 * l2 * sum(W^2)` on the weight matrices (not the biases).
    pub l2: f32,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f32>,
    /// Dropout rate on hidden activations during training, in [0, 1).
    pub dropout: f32,
    /// Early stopping on the epoch loss.
    pub early_stopping: Option<EarlyStopping>,
    /// Weight of the KL term (beta-VAE); 1 is the plain VAE.
    pub beta: f32,
    /// Reconstruction likelihood.
    pub likelihood: Likelihood,
    /// Input scaling, inverted exactly on output.
    pub scaling: Scaling,
    /// Seed of every random draw in training.
    pub seed: u64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            hidden: vec![64],
            latent: Latent::Count(8),
            activation: Activation::Relu,
            init: Init::XavierUniform,
            bias_init: BiasInit::Zeros,
            optimizer: Optimizer::Adam,
            learning_rate: 3e-3,
            epochs: 1000,
            min_steps: 1000,
            max_steps: 20_000,
            batch_size: 32,
            l2: 0.0,
            clip_norm: Some(10.0),
            dropout: 0.0,
            early_stopping: None,
            beta: 0.1,
            likelihood: Likelihood::Gaussian,
            scaling: Scaling::Standard,
            seed: 0,
        }
    }
}

impl VaeConfig {
    /// Checks every setting's domain.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.contains(&0) {
            return Err(Error::config("hidden", "layer widths must be at least 1"));
        }
        match self.latent {
            Latent::Count(0) => return Err(Error::config("latent", "must be at least 1")),
            Latent::Fraction(f) if !(f > 0.0 && f.is_finite()) => {
                return Err(Error::config("latent", format!("fraction {f} must be > 0")))
            }
            _ => {}
        }
        positive("learning_rate", self.learning_rate)?;
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.min_steps > self.max_steps || self.max_steps == 0 {
            return Err(Error::config(
                "max_steps",
                format!(
                    "{} must be at least 1 and at least min_steps ({})",
                    self.max_steps, self.min_steps
                ),
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(Error::config("l2", format!("{} must be >= 0", self.l2)));
        }
        if let Some(c) = self.clip_norm {
            positive("clip_norm", c)?;
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "dropout",
                format!("{} must be in [0, 1)", self.dropout),
            ));
        }
        if let Some(es) = self.early_stopping {
            if !(es.min_delta >= 0.0 && es.min_delta.is_finite()) {
                return Err(Error::config("early_stopping.min_delta", "must be >= 0"));
            }
            if es.patience == 0 {
                return Err(Error::config("early_stopping.patience", "must be >= 1"));
            }
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return Err(Error::config("beta", format!("{} must be >= 0", self.beta)));
        }
        if self.likelihood == Likelihood::Bernoulli && self.scaling == Scaling::Standard {
            return Err(Error::config(
                "scaling",
                "bernoulli likelihood needs data in [0, 1]: use min-max scaling or none",
            ));
        }
        Ok(())
    }
}

impl VaeConfig {
    /// The epochs a fit on `rows` rows runs: [`VaeConfig::epochs`], raised until the fit takes at
    /// least `min_steps` optimizer steps, then lowered until it takes at most `max_steps` (one
    /// step per mini-batch; whole epochs, at least one).
    ///
    /// ```
    /// let c = smrt::VaeConfig { epochs: 100, batch_size: 64, min_steps: 1000, max_steps: 20_000, ..Default::default() };
    /// assert_eq!(c.epochs_for(30), 1000);     // 1 batch per epoch: raised to 1,000 steps
    /// assert_eq!(c.epochs_for(640), 100);     // 10 batches per epoch: 1,000 steps as asked
    /// assert_eq!(c.epochs_for(50_000), 25);   // 782 batches per epoch: capped at 20,000 steps
    /// ```
    pub fn epochs_for(&self, rows: usize) -> usize {
        let per_epoch = self.batches_for(rows);
        let fewest = self.min_steps.div_ceil(per_epoch);
        let most = (self.max_steps / per_epoch).max(1);
        self.epochs.max(fewest).min(most)
    }

    /// The rows of a mini-batch for a class of `rows` rows: the batch size, or all of them.
    pub(crate) fn batch_for(&self, rows: usize) -> usize {
        self.batch_size.min(rows).max(1)
    }

    /// Mini-batches an epoch for a class of `rows` rows (the last may be smaller).
    pub(crate) fn batches_for(&self, rows: usize) -> usize {
        rows.div_ceil(self.batch_for(rows)).max(1)
    }
}

fn positive(name: &'static str, v: f32) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::config(name, format!("{v} must be > 0")))
    }
}
