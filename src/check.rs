//! Input checks shared by the public entry points.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// Rejects matrices with no rows or columns and any NaN or infinite value.
pub(crate) fn finite_matrix(x: ArrayView2<'_, f32>) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::EmptyInput("the matrix has no rows"));
    }
    if x.ncols() == 0 {
        return Err(Error::EmptyInput("the matrix has no feature columns"));
    }
    // A fast pass first; the position is looked up only when something is wrong.
    let all_finite = match x.as_slice_memory_order() {
        // Parts on separate threads, each in blocks without an early exit, so the test
        // vectorises.
        Some(values) => {
            let parts: Vec<&[f32]> = values.chunks(1 << 18).collect();
            let finite = |part: &&[f32]| {
                (part.chunks(1024)).all(|c| c.iter().fold(true, |ok, v| ok & v.is_finite()))
            };
            crate::parallel::parallel_map(&parts, finite)
                .into_iter()
                .all(|ok| ok)
        }
        None => x.iter().all(|v| v.is_finite()),
    };
    if all_finite {
        return Ok(());
    }
    for ((row, col), &value) in x.indexed_iter() {
        if !value.is_finite() {
            return Err(Error::NonFinite { row, col, value });
        }
    }
    Ok(())
}

/// Rejects a matrix whose width is not `features`.
pub(crate) fn width(x: ArrayView2<'_, f32>, features: usize) -> Result<()> {
    if x.ncols() != features {
        return Err(Error::ShapeMismatch {
            what: "feature columns",
            expected: features,
            got: x.ncols(),
        });
    }
    Ok(())
}
