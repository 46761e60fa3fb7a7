//! The resampling settings of `smrt balance` and `smrt fit`: flags, or keys of a TOML file
//! (`--config`) with the same names; a flag wins over the file, the file over the default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smrt::{
    Activation, Backend, BiasInit, CategoryDraw, EarlyStopping, Error, Generation, Init, Latent,
    Likelihood, Optimizer, Sampling, Scaling, SmrtBuilder, Strategy,
};

/// Parses a value by its kebab-case name, as the TOML file spells it (`rms-prop`, `he-normal`).
pub fn kebab<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| e.to_string())
}

/// A value's kebab-case name, as [`kebab`] parses it back (`prior-residual`).
pub fn kebab_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::from("?"),
    }
}

/// Rows per class a model is fitted from at most by default (`--sample`): a million rows of
/// 20 features hold 80 MB; a class that size trains in minutes on two cores.
pub const FIT_SAMPLE: usize = 1_000_000;

/// The resamplers of `balance --method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Smrt,
    Smote,
    RandomOver,
    RandomUnder,
}

/// Every setting of a resampling run. All optional: unset means the file's value or the default.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// The resampler: smrt (VAEs), smote, random-over (copies, optionally jittered with
    /// --shrinkage) or random-under (drops rows of the large classes). Default smrt.
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    /// Which classes grow and to what size: auto (= not-majority: every class up to the
    /// majority), minority (the smallest class only), or CLASS=COUNT,... (final counts).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Bring every class up to at least RATIO x the majority count, RATIO in (0, 1]
    /// (random-under: every class down to ceil(minority / RATIO)).
    #[arg(long, allow_hyphen_values = true)]
    pub ratio: Option<f32>,
    /// Seed of all randomness (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Neighbours per row (smote; default 5).
    #[arg(long)]
    pub k_neighbors: Option<usize>,
    /// Noise on the copies of random-over: a smoothed bootstrap, 0 for exact copies.
    #[arg(long, allow_hyphen_values = true)]
    pub shrinkage: Option<f32>,
    /// Where to compute: auto (a hardware GPU if present, else the CPU; the SMRT_BACKEND
    /// environment variable can set it), gpu (any adapter, software ones too) or cpu.
    #[arg(long, value_parser = kebab::<Backend>)]
    pub backend: Option<Backend>,
    /// Shuffle the output rows (smrt).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub shuffle: Option<bool>,
    /// Fit each class's model from at most N of its rows, a seeded uniform sample (smrt;
    /// default 1,000,000). A class of N rows or fewer is fitted from all of them.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Hidden layer widths of the encoder, comma-separated (the decoder mirrors them).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Latent size: a count (8), or a fraction of the modelled features (0.5).
    #[arg(long, value_parser = latent_size)]
    #[serde(default, deserialize_with = "latent_number")]
    pub latent: Option<Latent>,
    /// Hidden activation: relu, elu, tanh, sigmoid, identity.
    #[arg(long, value_parser = kebab::<Activation>)]
    pub activation: Option<Activation>,
    /// Weight initialisation: xavier-uniform, he-normal.
    #[arg(long, value_parser = kebab::<Init>)]
    pub init: Option<Init>,
    /// Bias initialisation: zeros, ones.
    #[arg(long, value_parser = kebab::<BiasInit>)]
    pub bias_init: Option<BiasInit>,
    /// Optimizer: adam, rms-prop, sgd, momentum, adagrad.
    #[arg(long, value_parser = kebab::<Optimizer>)]
    pub optimizer: Option<Optimizer>,
    /// Learning rate.
    #[arg(long, allow_hyphen_values = true)]
    pub learning_rate: Option<f32>,
    /// Passes over each class's rows (default 1000), within the step budget below.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// The fewest optimizer steps per class, however small (default 1000; 0 runs --epochs as given).
    #[arg(long)]
    pub min_steps: Option<usize>,
    /// The most optimizer steps per class, however large (default 20000).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// L2 penalty on the weights.
    #[arg(long, allow_hyphen_values = true)]
    pub l2: Option<f32>,
    /// Global gradient-norm clipping; 0 turns it off.
    #[arg(long, allow_hyphen_values = true)]
    pub clip_norm: Option<f32>,
    /// Dropout rate on hidden activations.
    #[arg(long, allow_hyphen_values = true)]
    pub dropout: Option<f32>,
    /// Early stopping: epochs without improvement before training stops.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Early stopping: the smallest loss decrease that counts as an improvement (default 0).
    #[arg(long, allow_hyphen_values = true)]
    pub min_delta: Option<f32>,
    /// KL weight.
    #[arg(long, allow_hyphen_values = true)]
    pub beta: Option<f32>,
    /// Reconstruction likelihood: gaussian (unit variance), gaussian-learned (a variance per
    /// feature, learned), bernoulli.
    #[arg(long, value_parser = kebab::<Likelihood>)]
    pub likelihood: Option<Likelihood>,
    /// Input scaling: standard, min-max, none.
    #[arg(long, value_parser = kebab::<Scaling>)]
    pub scaling: Option<Scaling>,
    /// Where synthetic rows are drawn from: auto (default: prior or prior-residual, chosen per
    /// class), prior, posterior, residual, prior-residual, interpolate.
    #[arg(long, value_parser = kebab::<Generation>)]
    pub generation: Option<Generation>,
    /// Scale of the latent noise of prior, posterior and residual draws (default 1).
    #[arg(long, allow_hyphen_values = true)]
    pub temperature: Option<f32>,
    /// Latent neighbours per row for interpolate generation (default 5).
    #[arg(long)]
    pub neighbors: Option<usize>,
    /// Limit generated values to the range their column has in the class (default off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub clip: Option<bool>,
    /// How categorical columns take their value: argmax (the most probable, default) or sample
    /// (a draw from the softmax).
    #[arg(long, value_parser = kebab::<CategoryDraw>)]
    pub category: Option<CategoryDraw>,
}

/// `latent = 8` or `latent = 0.5` in the TOML file, read as `--latent` reads them.
fn latent_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Latent>, D::Error> {
    let v = f64::deserialize(d)?;
    let text = if v.fract() == 0.0 && v >= 0.0 {
        format!("{}", v as u64)
    } else {
        v.to_string()
    };
    latent_size(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// `--latent`: a whole number is a count, anything else a fraction of the features.
fn latent_size(s: &str) -> Result<Latent, String> {
    if let Ok(n) = s.parse::<usize>() {
        return Ok(Latent::Count(n));
    }
    match s.parse::<f32>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(Latent::Fraction(f)),
        _ => Err(format!(
            "`{s}` is neither a count (8) nor a positive fraction of the features (0.5)"
        )),
    }
}

macro_rules! overlay {
    ($flags:ident, $file:ident; $($field:ident),* $(,)?) => {
        $( if $flags.$field.is_none() { $flags.$field = $file.$field; } )*
    };
}

impl Settings {
    /// The flags, completed from the TOML file at `config` if given.
    pub fn with_config(mut self, config: Option<&Path>) -> Result<Settings, Error> {
        let Some(path) = config else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file: Settings = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: e
                .span()
                .map_or(0, |s| text[..s.start].lines().count().max(1) as u64),
            reason: e.message().to_string(),
        })?;
        overlay!(self, file; method, strategy, ratio, seed, k_neighbors, shrinkage, backend,
            shuffle, sample, hidden, latent, activation, init, bias_init, optimizer, learning_rate, epochs,
            batch_size, l2, clip_norm, dropout, patience, min_delta, beta, likelihood, scaling,
            generation, min_steps, max_steps, temperature, neighbors, clip, category);
        Ok(self)
    }

    pub fn method(&self) -> Method {
        self.method.unwrap_or(Method::Smrt)
    }

    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }

    /// Rows per class a model is fitted from at most (`--sample`).
    pub fn sample(&self) -> usize {
        self.sample.unwrap_or(FIT_SAMPLE)
    }

    pub fn backend(&self) -> Backend {
        self.backend.unwrap_or_default()
    }

    /// The sampling strategy of `--strategy` or `--ratio` (not both).
    pub fn strategy(&self) -> Result<Strategy<String>, Error> {
        let strategy = match (&self.strategy, self.ratio) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "ratio",
                    "give --strategy or --ratio, not both",
                ))
            }
            (None, Some(r)) => Strategy::Ratio(r),
            (None, None) => Strategy::NotMajority,
            (Some(s), None) => {
                match s.trim() {
                    "auto" | "not-majority" => Strategy::NotMajority,
                    "minority" => Strategy::Minority,
                    list => {
                        let mut targets = BTreeMap::new();
                        for part in list.split(',') {
                            let (class, count) = part.rsplit_once('=').ok_or_else(|| {
                            Error::config(
                                "strategy",
                                format!("`{part}` is not auto, minority, not-majority or CLASS=COUNT"),
                            )
                        })?;
                            let count: usize = count.trim().parse().map_err(|_| {
                                Error::config(
                                    "strategy",
                                    format!("`{count}` in `{part}` is not a count"),
                                )
                            })?;
                            targets.insert(class.trim().to_string(), count);
                        }
                        Strategy::Targets(targets)
                    }
                }
            }
        };
        strategy.validate()?;
        Ok(strategy)
    }

    /// Errors for settings that the chosen method does not use.
    pub fn check_method(&self) -> Result<(), Error> {
        let method = self.method();
        let vae_set = self.hidden.is_some()
            || self.latent.is_some()
            || self.activation.is_some()
            || self.init.is_some()
            || self.bias_init.is_some()
            || self.optimizer.is_some()
            || self.learning_rate.is_some()
            || self.epochs.is_some()
            || self.batch_size.is_some()
            || self.l2.is_some()
            || self.clip_norm.is_some()
            || self.dropout.is_some()
            || self.patience.is_some()
            || self.min_delta.is_some()
            || self.beta.is_some()
            || self.likelihood.is_some()
            || self.scaling.is_some()
            || self.generation.is_some()
            || self.min_steps.is_some()
            || self.max_steps.is_some()
            || self.temperature.is_some()
            || self.neighbors.is_some()
            || self.clip.is_some()
            || self.category.is_some()
            || self.shuffle.is_some()
            || self.sample.is_some();
        let misplaced = [
            (
                "--epochs and the other model settings apply",
                vae_set,
                Method::Smrt,
            ),
            (
                "--k-neighbors applies",
                self.k_neighbors.is_some(),
                Method::Smote,
            ),
            (
                "--shrinkage applies",
                self.shrinkage.is_some(),
                Method::RandomOver,
            ),
        ];
        for (what, set, only) in misplaced {
            if set && method != only {
                return Err(Error::InvalidConfig {
                    name: "method",
                    reason: format!(
                        "{what} to --method {} only, not to {}",
                        kebab_name(&only),
                        kebab_name(&method)
                    ),
                });
            }
        }
        if self.min_delta.is_some() && self.patience.is_none() {
            return Err(Error::config(
                "min_delta",
                "is part of early stopping: give --patience too",
            ));
        }
        Ok(())
    }

    /// `base` with the sampling settings that were given.
    pub fn sampling_over(&self, base: Sampling) -> Sampling {
        let mut s = sampling_over(
            base,
            self.generation,
            self.temperature,
            self.neighbors,
            self.clip,
        );
        s.category = self.category.unwrap_or(s.category);
        s
    }

    /// The SMRT builder with every model setting applied.
    pub fn smrt_builder<L: smrt::Label>(&self, strategy: Strategy<L>) -> SmrtBuilder<L> {
        let mut b = smrt::Smrt::builder()
            .strategy(strategy)
            .seed(self.seed())
            .backend(self.backend());
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field.clone() { b = b.$field(v); } )* };
        }
        set!(
            hidden,
            activation,
            init,
            bias_init,
            optimizer,
            learning_rate,
            epochs,
            min_steps,
            max_steps,
            latent,
            temperature,
            neighbors,
            batch_size,
            l2,
            dropout,
            beta,
            likelihood,
            scaling,
            generation,
            category,
            shuffle
        );
        b = b.fit_rows(self.sample());
        if let Some(clip) = self.clip {
            b = b.clip(clip);
        }
        if let Some(c) = self.clip_norm {
            // 0 turns clipping off; a negative norm is refused by the builder.
            b = b.clip_norm((c != 0.0).then_some(c));
        }
        if let Some(patience) = self.patience {
            b = b.early_stopping(Some(EarlyStopping {
                min_delta: self.min_delta.unwrap_or(0.0),
                patience,
            }));
        }
        b
    }
}

/// `base` with each sampling setting that is `Some` replaced.
pub fn sampling_over(
    base: Sampling,
    generation: Option<Generation>,
    temperature: Option<f32>,
    neighbors: Option<usize>,
    clip: Option<bool>,
) -> Sampling {
    Sampling {
        generation: generation.unwrap_or(base.generation),
        temperature: temperature.unwrap_or(base.temperature),
        neighbors: neighbors.unwrap_or(base.neighbors),
        clip: clip.unwrap_or(base.clip),
        category: base.category,
    }
}
