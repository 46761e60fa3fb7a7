//! Settings of one VAE: architecture, optimisation, likelihood, scaling.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scale::Scaling;

/// Nonlinearity of the hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `x` for `x > 0`, else `exp(x) - 1` (alpha = 1).
    Elu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `x`.
    Identity,
}

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

/// The optimizer and its fixed hyper-parameters (the learning rate is [`VaeConfig::learning_rate`]).
///
/// With gradient `g`, parameter `w`, learning rate `lr`, step `t` (from 1):
/// - `Adam`: `m = 0.9 m + 0.1 g`, `v = 0.999 v + 0.001 g^2`,
///   `w -= lr * (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + 1e-8)` (Kingma & Ba, 2015).
/// - `RmsProp`: `v = 0.9 v + 0.1 g^2`, `w -= lr * g / (sqrt(v) + 1e-7)` (Tieleman & Hinton, 2012).
/// - `Sgd`: `w -= lr * g`.
/// - `Momentum`: `u = 0.9 u + g`, `w -= lr * u` (heavy ball, as in PyTorch's SGD with momentum).
/// - `Adagrad`: `s = s + g^2`, `w -= lr * g / (sqrt(s) + 1e-7)` (Duchi et al., 2011).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Adam with bias correction.
    #[default]
    Adam,
    /// RMSProp.
    RmsProp,
    /// Plain stochastic gradient descent.
    Sgd,
    /// SGD with heavy-ball momentum 0.9.
    Momentum,
    /// Adagrad.
    Adagrad,
}

impl Optimizer {
    /// Adam's first-moment decay.
    pub const ADAM_BETA1: f32 = 0.9;
    /// Adam's second-moment decay.
    pub const ADAM_BETA2: f32 = 0.999;
    /// Adam's denominator guard.
    pub const ADAM_EPS: f32 = 1e-8;
    /// RMSProp's decay.
    pub const RMSPROP_RHO: f32 = 0.9;
    /// Denominator guard of RMSProp and Adagrad.
    pub const EPS: f32 = 1e-7;
    /// Momentum coefficient.
    pub const MOMENTUM: f32 = 0.9;

    /// How many state tensors of the parameter's size the optimizer keeps.
    pub fn state_tensors(self) -> usize {
        match self {
            Optimizer::Adam => 2,
            Optimizer::Sgd => 0,
            Optimizer::RmsProp | Optimizer::Momentum | Optimizer::Adagrad => 1,
        }
    }
}

/// Reconstruction likelihood of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// Bernoulli on data in [0, 1]: loss `softplus(o) - x o` per element; output `sigmoid(o)`.
    Bernoulli,
    /// Unit-variance Gaussian: loss `0.5 (x - o)^2` per element; output `o`.
    #[default]
    Gaussian,
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

/// Where synthetic rows are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// Decode `z ~ N(0, I)`.
    #[default]
    Prior,
    /// Encode a randomly chosen real row of the class, sample `z ~ q(z|x)`, decode.
    Posterior,
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
    /// Maximum number of passes over the class's rows.
    pub epochs: usize,
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

fn positive(name: &'static str, v: f32) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::config(name, format!("{v} must be > 0")))
    }
}
