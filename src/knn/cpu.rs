//! The host's neighbour search: distances computed in registers and merged at once, each
//! pair computed once for both of its rows.
//!
//! Rows are cut into blocks of [`BLOCK`]. Work item `b` takes the rows of block `b` as queries
//! against every row from block `b` on, [`ROWS`] queries x [`LANES`] references at a time, in a
//! register tile that starts at `|q|^2 + |r|^2` and accumulates `(-2 q_f) r_f` over the
//! features: the squared distance, with no product matrix in memory. A distance offered to a
//! list is kept if it beats the list's `k`-th entry in the order (distance, index); nearly all
//! tiles beat none and are dismissed by one comparison per register. A pair from two blocks is
//! offered to both rows (the reference side through a lock per block, taken only when a
//! distance passes the test), so the products are half of `n^2 d`.
//!
//! Every distance is computed by the same operations in the same order whichever side reads
//! it, and a top-k list in a total order does not depend on the order of offers: the result
//! does not depend on the number of threads.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Query rows per register tile.
const ROWS: usize = 6;
/// Reference rows per register tile: two 8-wide registers per query row.
const LANES: usize = 16;
/// Rows per work item: a multiple of [`ROWS`] and [`LANES`].
const BLOCK: usize = 48;

/// The distances of one register tile: `ROWS` queries x `LANES` references.
type Tile = [[f32; LANES]; ROWS];

/// Which distances of a tile pass the limits: bit `l` of `own[r]` for query row `r` and
/// reference `l`; bit `l` of `refs` where some query row passes reference `l`'s limit.
#[derive(Debug, Default, Clone, Copy)]
struct Hits {
    own: [u16; ROWS],
    refs: u16,
}

/// Indices of the set bits of `mask`, lowest first.
fn bits(mut mask: u16) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let l = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            l
        })
    })
}

/// How register tiles are computed: chosen once from what the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Plain Rust, for any CPU.
    Portable,
    /// AVX2 and FMA intrinsics; only made by [`Kernel::detect`] on a CPU that has both.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernel::Avx2Fma;
        }
        Kernel::Portable
    }

    /// Fills `out` with tile (`q0`, `r0`) of `packed`; returns which distances are within the
    /// query row's `own` limit and which reference rows have one within their `refs` limit.
    #[inline(always)]
    fn tile(
        self,
        packed: &Packed,
        (q0, r0): (usize, usize),
        own: &[f32; ROWS],
        refs: &[f32; LANES],
        out: &mut Tile,
    ) -> Hits {
        let d = packed.d;
        let queries = &packed.queries[q0 * d..(q0 + ROWS) * d];
        let panel = &packed.panels[r0 * d..(r0 + LANES) * d];
        let nq: &[f32; ROWS] = packed.norms[q0..q0 + ROWS].try_into().expect("ROWS norms");
        let nr: &[f32; LANES] = packed.norms[r0..r0 + LANES]
            .try_into()
            .expect("LANES norms");
        match self {
            Kernel::Portable => portable_tile(queries, panel, (nq, nr), (own, refs), out),
            // SAFETY: this kernel is only chosen on a CPU with AVX2 and FMA (`detect`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => unsafe { avx2::tile(queries, panel, (nq, nr), (own, refs), out) },
        }
    }
}

/// [`Kernel::tile`] in plain Rust: `out = max(0, |q|^2 + |r|^2 + sum_f (-2 q_f) r_f)`.
fn portable_tile(
    queries: &[f32],
    panel: &[f32],
    (nq, nr): (&[f32; ROWS], &[f32; LANES]),
    (own, refs): (&[f32; ROWS], &[f32; LANES]),
    out: &mut Tile,
) -> Hits {
    for (a, &nq) in out.iter_mut().zip(nq) {
        for (v, &nr) in a.iter_mut().zip(nr) {
            *v = nq + nr;
        }
    }
    for (q, p) in queries.chunks_exact(ROWS).zip(panel.chunks_exact(LANES)) {
        for (a, &q) in out.iter_mut().zip(q) {
            for (v, &p) in a.iter_mut().zip(p) {
                *v += q * p;
            }
        }
    }
    // Rounding can take a near-zero distance below 0. Not `f32::max`: the NaN rule differs
    // from the vector kernel's.
    for v in out.iter_mut().flatten() {
        *v = if *v > 0.0 { *v } else { 0.0 };
    }
    let mask = |within: &mut dyn FnMut(usize) -> bool| {
        (0..LANES).fold(0, |m, l| m | (u16::from(within(l)) << l))
    };
    let mut hits = Hits::default();
    for ((m, row), &limit) in hits.own.iter_mut().zip(&*out).zip(own) {
        *m = mask(&mut |l| row[l] <= limit);
    }
    hits.refs = mask(&mut |l| out.iter().any(|row| row[l] <= refs[l]));
    hits
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Hits, Tile, LANES, ROWS};

    /// [`super::Kernel::tile`] in AVX2 registers: two 8-wide accumulators per query row, one
    /// fused multiply-add per feature each. The tests are one comparison per register.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile(
        queries: &[f32],
        panel: &[f32],
        (nq, nr): (&[f32; ROWS], &[f32; LANES]),
        (own, refs): (&[f32; ROWS], &[f32; LANES]),
        out: &mut Tile,
    ) -> Hits {
        let d = panel.len() / LANES;
        assert!(queries.len() == d * ROWS && panel.len() == d * LANES);
        let (q, p) = (queries.as_ptr(), panel.as_ptr());
        // SAFETY (every load below): `f < d`, and the slices hold `d * ROWS` and `d * LANES`
        // values, asserted above; the arrays hold what is read from them.
        let (nr0, nr1) = unsafe {
            (
                _mm256_loadu_ps(nr.as_ptr()),
                _mm256_loadu_ps(nr.as_ptr().add(8)),
            )
        };
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        for (a, &nq) in acc.iter_mut().zip(nq) {
            let nq = _mm256_set1_ps(nq);
            *a = [_mm256_add_ps(nq, nr0), _mm256_add_ps(nq, nr1)];
        }
        for f in 0..d {
            let (p0, p1) = unsafe {
                (
                    _mm256_loadu_ps(p.add(f * LANES)),
                    _mm256_loadu_ps(p.add(f * LANES + 8)),
                )
            };
            for (r, a) in acc.iter_mut().enumerate() {
                let qf = _mm256_set1_ps(unsafe { *q.add(f * ROWS + r) });
                a[0] = _mm256_fmadd_ps(qf, p0, a[0]);
                a[1] = _mm256_fmadd_ps(qf, p1, a[1]);
            }
        }
        let zero = _mm256_setzero_ps();
        let mut hits = Hits::default();
        let mut near = [_mm256_set1_ps(f32::INFINITY); 2];
        for (((a, o), &limit), m) in acc.iter().zip(out.iter_mut()).zip(own).zip(&mut hits.own) {
            let limit = _mm256_set1_ps(limit);
            for (h, (&v, o)) in a.iter().zip(o.chunks_exact_mut(8)).enumerate() {
                // max(v, 0) is 0 for a NaN, as the portable kernel's test.
                let v = _mm256_max_ps(v, zero);
                unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
                let within = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(v, limit)) as u16;
                *m |= within << (8 * h);
                near[h] = _mm256_min_ps(near[h], v);
            }
        }
        let (r0, r1) = unsafe {
            (
                _mm256_loadu_ps(refs.as_ptr()),
                _mm256_loadu_ps(refs.as_ptr().add(8)),
            )
        };
        let low = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(near[0], r0)) as u16;
        let high = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(near[1], r1)) as u16;
        hits.refs = low | high << 8;
        hits
    }
}

/// The top-k lists of the rows of one block, `BLOCK x k`, each sorted by (distance, index).
struct Lists {
    k: usize,
    dist: Vec<f32>,
    index: Vec<u32>,
}

impl Lists {
    fn new(k: usize) -> Self {
        Lists {
            k,
            dist: vec![f32::INFINITY; BLOCK * k],
            index: vec![u32::MAX; BLOCK * k],
        }
    }

    /// The `k`-th distance of row `row`: offers farther than it are refused.
    #[allow(dead_code)]
    fn limit(&self, row: usize) -> f32 {
        self.dist[(row + 1) * self.k - 1]
    }

    /// Offers neighbour `j` at distance `dist` to row `row` of the block; returns the row's
    /// `k`-th distance after it.
    fn offer(&mut self, row: usize, dist: f32, j: u32) -> f32 {
        let k = self.k;
        let d = &mut self.dist[row * k..(row + 1) * k];
        let i = &mut self.index[row * k..(row + 1) * k];
        // (dist, j) before (e, ei) in the order (distance, index).
        let before = |e: f32, ei: u32| dist < e || (dist == e && j < ei);
        if before(d[k - 1], i[k - 1]) {
            let mut p = k - 1;
            while p > 0 && before(d[p - 1], i[p - 1]) {
                d[p] = d[p - 1];
                i[p] = i[p - 1];
                p -= 1;
            }
            d[p] = dist;
            i[p] = j;
        }
        d[k - 1]
    }
}

/// The data laid out for the register tiles, every part padded to whole blocks.
struct Packed {
    n: usize,
    d: usize,
    /// Squared norms; `+inf` on padding rows, so their distances are `+inf`.
    norms: Vec<f32>,
    /// Per tile of [`ROWS`] rows: `d x ROWS`, the features times -2.
    queries: Vec<f32>,
    /// Per panel of [`LANES`] rows: `d x LANES`.
    panels: Vec<f32>,
}

impl Packed {
    fn new(data: &[f32], norms: &[f32], d: usize) -> Self {
        let n = norms.len();
        let padded = n.div_ceil(BLOCK) * BLOCK;
        let mut packed = Packed {
            n,
            d,
            norms: norms.to_vec(),
            queries: vec![0.0; padded * d],
            panels: vec![0.0; padded * d],
        };
        packed.norms.resize(padded, f32::INFINITY);
        for (row, x) in data.chunks_exact(d).enumerate() {
            let (tile, r) = (row / ROWS, row % ROWS);
            let (panel, l) = (row / LANES, row % LANES);
            for (f, &v) in x.iter().enumerate() {
                packed.queries[(tile * d + f) * ROWS + r] = -2.0 * v;
                packed.panels[(panel * d + f) * LANES + l] = v;
            }
        }
        packed
    }
}

/// The `k` nearest other rows of each of the `n` rows of `data` (`n x d`, centred; `norms`
/// their squared norms), `n x k` indices, nearest first, ties to the lower index.
pub(super) fn nearest(data: &[f32], norms: &[f32], d: usize, k: usize) -> Vec<u32> {
    nearest_with(Kernel::detect(), data, norms, d, k)
}

/// [`nearest`] with the given kernel.
fn nearest_with(kernel: Kernel, data: &[f32], norms: &[f32], d: usize, k: usize) -> Vec<u32> {
    let packed = Packed::new(data, norms, d);
    let shared = Shared::new(packed.n, packed.norms.len(), k);
    let items: Vec<usize> = (0..packed.norms.len() / BLOCK).collect();
    crate::parallel::parallel_map(&items, |&b| block(kernel, &packed, &shared, b, k));
    let mut out = Vec::with_capacity(packed.n * k);
    for lists in shared.lists {
        let lists = lists.into_inner().expect("no worker panicked");
        out.extend_from_slice(&lists.index);
    }
    out.truncate(packed.n * k);
    out
}

/// The top-k lists of all rows, a lock per block, and every row's `k`-th distance readable
/// without the lock.
struct Shared {
    lists: Vec<Mutex<Lists>>,
    /// The bits of each row's `k`-th distance, stored after every change to its list; `-inf` for
    /// padding rows, which take no offers. A value read while another thread offers is at
    /// worst too large: it lets through more offers, never fewer.
    limits: Vec<AtomicU32>,
}

impl Shared {
    fn new(n: usize, padded: usize, k: usize) -> Self {
        Shared {
            lists: (0..padded / BLOCK)
                .map(|_| Mutex::new(Lists::new(k)))
                .collect(),
            limits: (0..padded)
                .map(|j| {
                    let limit = if j < n {
                        f32::INFINITY
                    } else {
                        f32::NEG_INFINITY
                    };
                    AtomicU32::new(limit.to_bits())
                })
                .collect(),
        }
    }

    /// Row `j`'s `k`-th distance: offers farther than it are refused.
    fn limit(&self, j: usize) -> f32 {
        f32::from_bits(self.limits[j].load(Ordering::Relaxed))
    }

    /// Offers `(row, neighbour, distance)` to the lists of block `owner`, under one lock.
    fn offer(&self, owner: usize, offers: impl Iterator<Item = (usize, u32, f32)>) {
        let mut lists = self.lists[owner].lock().expect("no worker panicked");
        for (row, i, dist) in offers {
            let limit = lists.offer(row, dist, i);
            self.limits[owner * BLOCK + row].store(limit.to_bits(), Ordering::Relaxed);
        }
    }
}

/// Work item `b`: the rows of block `b` against every row from block `b` on.
fn block(kernel: Kernel, packed: &Packed, shared: &Shared, b: usize, k: usize) {
    let n = packed.n;
    let first = b * BLOCK;
    // The block's own lists, private while the item runs: other items offer to the shared
    // lists meanwhile, and the two are merged at the end. Nothing farther than the shared
    // lists' k-th (from earlier items) can be among the nearest.
    let mut own = Lists::new(k);
    let start_limit: [f32; BLOCK] = std::array::from_fn(|r| shared.limit(first + r));
    let mut own_limit = start_limit;
    let mut tile = [[0.0; LANES]; ROWS];
    // Offers to the current panel's references: (row in its block, query row, distance).
    let mut pending: Vec<(usize, u32, f32)> = Vec::new();
    // Items that run at the same time start their walk over the panels at scattered places,
    // so they seldom offer to the same block at once.
    let panels = (packed.norms.len() - first) / LANES;
    let start = (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let walk = (0..panels).map(|p| first + (p + start as usize) % panels * LANES);
    for r0 in walk {
        // References in later blocks take this item's offers too; those in this block are
        // offered to as queries.
        let mirrored = r0 >= first + BLOCK;
        let ref_limit: [f32; LANES] = std::array::from_fn(|l| shared.limit(r0 + l));
        for t in 0..BLOCK / ROWS {
            let q0 = first + t * ROWS;
            let limit: &mut [f32; ROWS] = (&mut own_limit[t * ROWS..(t + 1) * ROWS])
                .try_into()
                .expect("ROWS limits");
            let hits = kernel.tile(packed, (q0, r0), limit, &ref_limit, &mut tile);
            for (r, (row, &mask)) in tile.iter().zip(&hits.own).enumerate() {
                for l in bits(mask) {
                    let j = r0 + l;
                    if j != q0 + r && j < n {
                        let start = start_limit[t * ROWS + r];
                        limit[r] = own.offer(t * ROWS + r, row[l], j as u32).min(start);
                    }
                }
            }
            if mirrored {
                for l in bits(hits.refs) {
                    for (r, row) in tile.iter().enumerate() {
                        if q0 + r < n && row[l] <= ref_limit[l] {
                            pending.push((r0 % BLOCK + l, (q0 + r) as u32, row[l]));
                        }
                    }
                }
            }
        }
        if !pending.is_empty() {
            shared.offer(r0 / BLOCK, pending.drain(..));
        }
    }
    let rows = BLOCK.min(n - first);
    let own_offers = (0..rows * k).map(|e| (e / k, own.index[e], own.dist[e]));
    shared.offer(b, own_offers);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row `q`'s `k` nearest others by exact arithmetic, ties to the lower index.
    fn naive(data: &[i32], d: usize, k: usize) -> Vec<u32> {
        let n = data.len() / d;
        let row = |i: usize| &data[i * d..(i + 1) * d];
        (0..n)
            .flat_map(|q| {
                let mut all: Vec<(i32, u32)> = (0..n)
                    .filter(|&j| j != q)
                    .map(|j| {
                        let dist = row(q).iter().zip(row(j)).map(|(a, b)| (a - b).pow(2));
                        (dist.sum(), j as u32)
                    })
                    .collect();
                all.sort_unstable();
                all.into_iter().take(k).map(|(_, j)| j)
            })
            .collect()
    }

    #[test]
    fn every_kernel_equals_exact_arithmetic_ties_included() {
        let mut kernels = vec![Kernel::Portable];
        if Kernel::detect() != Kernel::Portable {
            kernels.push(Kernel::detect());
        }
        // Small integers: every distance is exact in f32, so the lists must equal the exact
        // ones, ties (plentiful at these values) broken by index. Sizes cover one partial
        // block, exactly one block, several blocks with padding, k up to 64.
        for (n, d, k) in [
            (2, 1, 1),
            (47, 3, 5),
            (48, 2, 47),
            (97, 1, 3),
            (200, 33, 64),
            (1000, 4, 10),
        ] {
            let ints: Vec<i32> = (0..n * d)
                .map(|i| ((i * 7919 + i / d * 31) % 9) as i32 - 4)
                .collect();
            let data: Vec<f32> = ints.iter().map(|&v| v as f32).collect();
            let norms: Vec<f32> = data
                .chunks(d)
                .map(|r| r.iter().map(|v| v * v).sum())
                .collect();
            let want = naive(&ints, d, k);
            for &kernel in &kernels {
                let got = nearest_with(kernel, &data, &norms, d, k);
                assert_eq!(got, want, "{kernel:?} n {n} d {d} k {k}");
            }
        }
    }
}
