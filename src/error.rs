//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in `smrt`, as a value: bad input, bad settings, files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input has no rows (or no feature columns).
    #[error("empty input: {0}")]
    EmptyInput(&'static str),

    /// Two things that must have the same length do not.
    #[error("shape mismatch: {what} (expected {expected}, got {got})")]
    ShapeMismatch {
        /// What was compared.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length found.
        got: usize,
    },

    /// A NaN or infinite value in the input.
    #[error("non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The offending value.
        value: f32,
    },

    /// A class that must be modelled has too few rows.
    #[error("class {class} has {count} row(s); at least {needed} are needed to model it")]
    ClassTooSmall {
        /// The class label, as debug text.
        class: String,
        /// Its number of rows.
        count: usize,
        /// The minimum.
        needed: usize,
    },

    /// A class too large for the memory the method needs for it.
    #[error("class {class} has {rows} rows: {method} needs about {needed_mb} MB for it and {available_mb} MB are available; {advice}")]
    ClassTooLarge {
        /// The class label, as debug text.
        class: String,
        /// Its number of rows.
        rows: usize,
        /// The method.
        method: &'static str,
        /// Estimated memory needed, MB.
        needed_mb: u64,
        /// Memory available, MB.
        available_mb: u64,
        /// What to do instead.
        advice: &'static str,
    },

    /// A class named by the caller does not occur in the labels.
    #[error("unknown class {0}: it does not occur in the labels")]
    UnknownClass(String),

    /// A setting is outside its domain.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// Why it is rejected.
        reason: String,
    },

    /// The data does not fit the chosen model (for example Bernoulli likelihood on data outside [0, 1]).
    #[error("data does not fit the model: {0}")]
    DataModel(String),

    /// A fit was stopped between epochs by its caller (an observer, or a stop flag set).
    #[error("interrupted")]
    Interrupted,
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}: loss is {loss}; lower the learning rate or enable gradient clipping")]
    Diverged {
        /// Zero-based epoch.
        epoch: usize,
        /// The loss seen.
        loss: f64,
    },

    /// A table file could not be parsed.
    #[error("{path}: line {line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// One-based line number in the file.
        line: u64,
        /// What is wrong.
        reason: String,
    },

    /// No GPU adapter could be used where one was asked for.
    #[error("no GPU: {0}")]
    NoGpu(String),

    /// The GPU reported an error: validation, out of memory, a lost device, a limit exceeded.
    #[error("GPU error in {op}: {reason}")]
    Gpu {
        /// The operation (kernel, upload, read-back).
        op: String,
        /// What the device or driver said.
        reason: String,
    },

    /// A saved model that cannot be used: another format or version, shapes that do not agree,
    /// or a model of other data.
    #[error("model {path}: {reason}")]
    Model {
        /// The model file (or directory).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            name,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Gpu`].
    pub(crate) fn gpu(op: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Gpu {
            op: op.into(),
            reason: reason.to_string(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
