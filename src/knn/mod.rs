//! Exact k-nearest neighbours (squared Euclidean distance) on either engine.
//!
//! Distances come from `|a|^2 + |b|^2 - 2 <a, b>` on data centred first (which keeps the
//! subtraction accurate), and each row keeps a running top-k list, so the full `n x n` distance
//! matrix never exists. Ties are broken by the lower row index, on both engines.
//!
//! - On the GPU, tile by tile: the products come from the engine's matrix product and each
//!   tile is merged into the lists by [`Engine::knn_merge`]; memory is one `queries x refs`
//!   tile.
//! - On the CPU, distances are computed in registers and merged at once, each pair once for
//!   both of its rows (see `cpu.rs`); memory is the lists and a copy of the data.

mod cpu;

use ndarray::{Array2, ArrayView2};

use crate::check;
use crate::engine::{Device, Engine, KnnTile, MatMul, KNN_MAX_K};
use crate::error::{Error, Result};

/// Tile sizes: query rows per tile, reference rows per tile.
#[derive(Debug, Clone, Copy)]
struct Tiles {
    queries: usize,
    refs: usize,
}

/// The `k` nearest other rows of every row of `x`: row `i` of the result lists their indices,
/// nearest first (ties: lower index first). Needs `1 <= k <= min(n - 1, 64)`.
///
/// ```
/// use smrt::{knn::nearest_neighbors, Device};
/// let x = ndarray::array![[0.0f32], [1.0], [3.0], [7.0]];
/// let nn = nearest_neighbors(&Device::Cpu, x.view(), 2)?;
/// assert_eq!(nn.row(2).to_vec(), vec![1, 0]); // 3 is nearest to 1, then 0 (7 is farther)
/// # Ok::<(), smrt::Error>(())
/// ```
pub fn nearest_neighbors(device: &Device, x: ArrayView2<'_, f32>, k: usize) -> Result<Array2<u32>> {
    check::finite_matrix(x)?;
    let n = x.nrows();
    if k == 0 || k > KNN_MAX_K || k >= n {
        return Err(Error::config(
            "k_neighbors",
            format!(
                "{k} neighbours of {n} rows: need 1 <= k <= {}",
                (n - 1).min(KNN_MAX_K)
            ),
        ));
    }
    let d = x.ncols();
    let x = x.as_standard_layout();
    let rows = x.as_slice().expect("standard layout").chunks_exact(d);
    let mut sums = vec![0.0f64; d];
    for row in rows.clone() {
        sums.iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += f64::from(v));
    }
    let mean: Vec<f32> = sums.iter().map(|s| (s / n as f64) as f32).collect();
    let mut data = Vec::with_capacity(n * d);
    for row in rows {
        data.extend(row.iter().zip(&mean).map(|(&v, &m)| v - m));
    }
    let norms: Vec<f32> = data.chunks_exact(d).map(squared_norm).collect();
    let data = data.as_slice();
    // Distances sum two squared norms and products bounded by them: keep all of it finite.
    if let Some(row) = norms.iter().position(|v| *v >= f32::MAX / 4.0) {
        return Err(Error::DataModel(format!(
            "row {row} is too far from the mean for squared distances in f32; scale the features"
        )));
    }
    let index = match device {
        Device::Cpu => cpu::nearest(data, &norms, d, k),
        Device::Gpu(gpu) => {
            let limits = gpu.limits();
            // A tile of at most 16M distances (64 MB), and never over one binding.
            let cap = (16 << 20).min(limits.max_storage_buffer_binding_size as usize / 4);
            let queries = n.min(8192);
            let tiles = Tiles {
                queries,
                refs: n.min((cap / queries).max(1)),
            };
            search(&mut gpu.engine()?, data, &norms, d, k, tiles)?
        }
    };
    Ok(Array2::from_shape_vec((n, k), index).expect("n * k indices"))
}

/// `|x|^2`, in eight partial sums so the loop vectorises.
fn squared_norm(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for chunk in chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v * v);
    }
    lanes.iter().sum::<f32>() + rest
}

/// The neighbours of all `n` rows of `data` (`n x d`, centred), tile by tile on engine `e`.
fn search<E: Engine>(
    e: &mut E,
    data: &[f32],
    norms: &[f32],
    d: usize,
    k: usize,
    tiles: Tiles,
) -> Result<Vec<u32>> {
    let n = norms.len();
    let x = e.upload(data)?;
    let norms = e.upload(norms)?;
    let rows = e.upload_indices(&(0..n as u32).collect::<Vec<_>>())?;
    let mut q_buf = e.zeros(tiles.queries * d)?;
    let mut r_buf = e.zeros(tiles.refs * d)?;
    let mut gram = e.zeros(tiles.queries * tiles.refs)?;
    let mut out = Vec::with_capacity(n * k);
    for q_start in (0..n).step_by(tiles.queries) {
        let qn = tiles.queries.min(n - q_start);
        e.gather_rows(&x, d, &rows, q_start, qn, &mut q_buf);
        let mut best_d = e.upload(&vec![f32::INFINITY; qn * k])?;
        let mut best_i = e.upload_indices(&vec![u32::MAX; qn * k])?;
        for r_start in (0..n).step_by(tiles.refs) {
            let rn = tiles.refs.min(n - r_start);
            let products = if (q_start, qn) == (r_start, rn) {
                &q_buf
            } else {
                e.gather_rows(&x, d, &rows, r_start, rn, &mut r_buf);
                &r_buf
            };
            let shape = MatMul {
                m: qn,
                k: d,
                n: rn,
                a_t: false,
                b_t: true,
            };
            e.matmul(
                &q_buf,
                products,
                &mut gram,
                shape,
                crate::engine::Epilogue::None,
            );
            let tile = KnnTile {
                queries: qn,
                q_start,
                refs: rn,
                r_start,
                k,
            };
            e.knn_merge(&gram, &norms, tile, &mut best_d, &mut best_i);
        }
        out.extend(e.read_indices(&best_i, qn * k)?);
    }
    Ok(out)
}
