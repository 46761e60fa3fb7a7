//! Where each output row of a balancer came from: the record balancers produce and table
//! writers read.

/// Where an output row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Input row `i`, unchanged.
    Real(usize),
    /// A synthetic row; `source` is the input row it was drawn from, where there is one
    /// (SMRT's posterior generation, SMOTE's base row, random over-sampling's copied row), and
    /// `None` for draws from the prior.
    Synthetic {
        /// Index of the input row it was generated from.
        source: Option<usize>,
    },
}

impl Origin {
    /// Whether the row is synthetic.
    pub fn is_synthetic(self) -> bool {
        matches!(self, Origin::Synthetic { .. })
    }
}
