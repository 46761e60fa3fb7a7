//! The vocabulary of the kernels: which nonlinearity, which reconstruction likelihood, which
//! optimizer. The engine computes them; the VAE's settings (`crate::vae`) choose among them.

use serde::{Deserialize, Serialize};

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

/// The optimizer and its fixed hyper-parameters (the learning rate is `VaeConfig::learning_rate`).
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
    /// Gaussian with a learned variance per feature (heteroscedastic across features): with
    /// `s_j` the trained log-variance of feature `j`, clamped to
    /// [[`Likelihood::MIN_LOGVAR`], [`Likelihood::MAX_LOGVAR`]], the loss per element is
    /// `0.5 ((x - o)^2 e^(-s_j) + s_j + ln 2 pi)`; output `o`, plus noise `N(0, e^(s_j))` where
    /// generation samples the whole model (prior and posterior draws). Features the decoder can
    /// reproduce well get a small variance and so more weight against the KL term.
    GaussianLearned,
}

impl Likelihood {
    /// The smallest log-variance the learned Gaussian uses (variance about 4.5e-5 in scaled units).
    pub const MIN_LOGVAR: f32 = -10.0;
    /// The largest log-variance the learned Gaussian uses (variance about 403 in scaled units).
    pub const MAX_LOGVAR: f32 = 6.0;
}
