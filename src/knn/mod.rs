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

use std::ops::Range;

use ndarray::{s, Array2, ArrayView2};

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
    let centred = Centred::new(&[x], x)?;
    let (data, norms) = (centred.data.as_slice(), centred.norms.as_slice());
    let index = match device {
        Device::Cpu => cpu::nearest(data, norms, d, k),
        Device::Gpu(gpu) => {
            let all = Sets {
                queries: 0..n,
                refs: 0..n,
            };
            let tiles = Tiles::fit(gpu, &all);
            search(&mut gpu.engine()?, data, norms, d, k, tiles, all)?
        }
    };
    Ok(Array2::from_shape_vec((n, k), index).expect("n * k indices"))
}

/// The `k` nearest rows of `refs` to each row of `queries` (the same columns): row `i` of the
/// result lists indices into `refs`, nearest first (ties: lower index first). Needs
/// `1 <= k <= min(refs, 64)`. A query row equal to a reference row has it as its nearest, at
/// distance 0.
///
/// ```
/// use smrt::{knn::nearest_in, Device};
/// let refs = ndarray::array![[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
/// let queries = ndarray::array![[9.0f32, 1.0], [0.0, 0.0]];
/// let nn = nearest_in(&Device::Cpu, queries.view(), refs.view(), 1)?;
/// assert_eq!(nn.column(0).to_vec(), vec![1, 0]);
/// # Ok::<(), smrt::Error>(())
/// ```
pub fn nearest_in(
    device: &Device,
    queries: ArrayView2<'_, f32>,
    refs: ArrayView2<'_, f32>,
    k: usize,
) -> Result<Array2<u32>> {
    let (queries, refs) = (queries.view(), refs.view());
    check::finite_matrix(queries)?;
    check::finite_matrix(refs)?;
    let (nq, nr, d) = (queries.nrows(), refs.nrows(), refs.ncols());
    if queries.ncols() != d {
        return Err(Error::ShapeMismatch {
            what: "query columns",
            expected: d,
            got: queries.ncols(),
        });
    }
    if k == 0 || k > KNN_MAX_K || k > nr {
        return Err(Error::config(
            "k_neighbors",
            format!(
                "{k} neighbours among {nr} rows: need 1 <= k <= {}",
                nr.min(KNN_MAX_K)
            ),
        ));
    }
    // References first, so that an index into the stacked rows is an index into `refs`.
    let centred = Centred::new(&[refs.view(), queries.view()], refs)?;
    let sets = Sets {
        queries: nr..nr + nq,
        refs: 0..nr,
    };
    let index = match device {
        Device::Cpu => cpu_cross(&centred, d, k, &sets),
        Device::Gpu(gpu) => {
            let tiles = Tiles::fit(gpu, &sets);
            let (data, norms) = (centred.data.as_slice(), centred.norms.as_slice());
            search(&mut gpu.engine()?, data, norms, d, k, tiles, sets)?
        }
    };
    Ok(Array2::from_shape_vec((nq, k), index).expect("queries * k indices"))
}

/// Rows stacked and centred on the mean of `centre`, with their squared norms.
struct Centred {
    data: Vec<f32>,
    norms: Vec<f32>,
}

impl Centred {
    fn new(parts: &[ArrayView2<'_, f32>], centre: ArrayView2<'_, f32>) -> Result<Self> {
        let d = centre.ncols();
        let n = centre.nrows().max(1);
        let mut sums = vec![0.0f64; d];
        for row in centre.rows() {
            sums.iter_mut()
                .zip(row)
                .for_each(|(s, &v)| *s += f64::from(v));
        }
        let mean: Vec<f32> = sums.iter().map(|s| (s / n as f64) as f32).collect();
        let total: usize = parts.iter().map(|p| p.nrows()).sum();
        let mut data = Vec::with_capacity(total * d);
        for part in parts {
            for row in part.rows() {
                data.extend(row.iter().zip(&mean).map(|(&v, &m)| v - m));
            }
        }
        let norms: Vec<f32> = data.chunks_exact(d.max(1)).map(squared_norm).collect();
        // Distances sum two squared norms and products bounded by them: keep all of it finite.
        if let Some(row) = norms.iter().position(|v| *v >= f32::MAX / 4.0) {
            return Err(Error::DataModel(format!(
                "row {row} is too far from the mean for squared distances in f32; scale the features"
            )));
        }
        Ok(Centred { data, norms })
    }
}

impl Tiles {
    /// Tiles of at most 16M distances (64 MB) on `gpu`, never over one binding.
    fn fit(gpu: &crate::engine::Gpu, sets: &Sets) -> Self {
        let cap = (16 << 20).min(gpu.limits().max_storage_buffer_binding_size as usize / 4);
        let queries = sets.queries.len().clamp(1, 8192);
        Tiles {
            queries,
            refs: sets.refs.len().min((cap / queries).max(1)),
        }
    }
}

/// [`nearest_in`] on the host: blocks of query rows on separate threads, each block's
/// products with a panel of reference rows from one matrix product, merged into its lists.
fn cpu_cross(centred: &Centred, d: usize, k: usize, sets: &Sets) -> Vec<u32> {
    const QUERIES: usize = 256;
    const REFS: usize = 2048;
    let (data, norms) = (centred.data.as_slice(), centred.norms.as_slice());
    let all = ArrayView2::from_shape((norms.len(), d), data).expect("rows x d values");
    let starts: Vec<usize> = sets.queries.clone().step_by(QUERIES).collect();
    let blocks = crate::parallel::parallel_map(&starts, |&q0| {
        let q1 = (q0 + QUERIES).min(sets.queries.end);
        let q = all.slice(s![q0..q1, ..]);
        let mut best_d = vec![f32::INFINITY; (q1 - q0) * k];
        let mut best_i = vec![u32::MAX; (q1 - q0) * k];
        for r0 in sets.refs.clone().step_by(REFS) {
            let r1 = (r0 + REFS).min(sets.refs.end);
            let gram = q.dot(&all.slice(s![r0..r1, ..]).t());
            let gram = gram.as_standard_layout();
            merge_rows(
                gram.as_slice().expect("standard layout"),
                &norms[q0..q1],
                &norms[r0..r1],
                r0,
                k,
                (&mut best_d, &mut best_i),
            );
        }
        best_i
    });
    blocks.concat()
}

/// Merges products `gram` (`queries x refs`, reference rows from global index `r_start`) into
/// the queries' top-k lists. References arrive in ascending index order, so a distance equal to
/// the list's `k`-th never enters (the earlier index wins the tie), and eight distances are
/// tested at once against the limit before any is merged.
fn merge_rows(
    gram: &[f32],
    q_norms: &[f32],
    r_norms: &[f32],
    r_start: usize,
    k: usize,
    (best_d, best_i): (&mut [f32], &mut [u32]),
) {
    const LANES: usize = 8;
    let refs = r_norms.len();
    for (q, &nq) in q_norms.iter().enumerate() {
        let row = &gram[q * refs..(q + 1) * refs];
        let bd = &mut best_d[q * k..(q + 1) * k];
        let bi = &mut best_i[q * k..(q + 1) * k];
        for (c, (g, nr)) in row.chunks(LANES).zip(r_norms.chunks(LANES)).enumerate() {
            let nearest = g
                .iter()
                .zip(nr)
                .fold(f32::INFINITY, |m, (&g, &n)| m.min(nq + n - 2.0 * g));
            if nearest >= bd[k - 1] {
                continue;
            }
            for (t, (&g, &n)) in g.iter().zip(nr).enumerate() {
                let d = (nq + n - 2.0 * g).max(0.0);
                if d >= bd[k - 1] {
                    continue;
                }
                let mut p = k - 1;
                while p > 0 && d < bd[p - 1] {
                    bd[p] = bd[p - 1];
                    bi[p] = bi[p - 1];
                    p -= 1;
                }
                bd[p] = d;
                bi[p] = (r_start + c * LANES + t) as u32;
            }
        }
    }
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

/// The rows of `data` that ask for neighbours, and the rows they are found among.
#[derive(Debug, Clone)]
struct Sets {
    queries: Range<usize>,
    refs: Range<usize>,
}

/// The neighbours of the `sets.queries` rows of `data` (`n x d`, centred) among its
/// `sets.refs` rows (a row is never its own neighbour), tile by tile on engine `e`; indices
/// are rows of `data`.
fn search<E: Engine>(
    e: &mut E,
    data: &[f32],
    norms: &[f32],
    d: usize,
    k: usize,
    tiles: Tiles,
    sets: Sets,
) -> Result<Vec<u32>> {
    let n = norms.len();
    let x = e.upload(data)?;
    let norms = e.upload(norms)?;
    let rows = e.upload_indices(&(0..n as u32).collect::<Vec<_>>())?;
    let mut q_buf = e.zeros(tiles.queries * d)?;
    let mut r_buf = e.zeros(tiles.refs * d)?;
    let mut gram = e.zeros(tiles.queries * tiles.refs)?;
    let mut out = Vec::with_capacity(sets.queries.len() * k);
    for q_start in sets.queries.clone().step_by(tiles.queries) {
        let qn = tiles.queries.min(sets.queries.end - q_start);
        e.gather_rows(&x, d, &rows, q_start, qn, &mut q_buf);
        let mut best_d = e.upload(&vec![f32::INFINITY; qn * k])?;
        let mut best_i = e.upload_indices(&vec![u32::MAX; qn * k])?;
        for r_start in sets.refs.clone().step_by(tiles.refs) {
            let rn = tiles.refs.min(sets.refs.end - r_start);
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
                batch: 1,
                strides: None,
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
