//! What more than one test file uses.

use smrt::Generation;

/// Every generation mode a model draws with (`Auto` resolves to one of them).
pub const EVERY_GENERATION: [Generation; 5] = [
    Generation::Prior,
    Generation::Posterior,
    Generation::Residual,
    Generation::PriorResidual,
    Generation::Interpolate,
];
