//! The host's neighbour search: distances computed in registers and merged at once, each
//! pair computed once for both of its rows.
//!
//! Rows are cut into blocks of [`BLOCK`] and packed for the registers. A strip is one block's
//! rows against a panel of [`LANES`] rows, computed [`ROWS`] queries at a time in a register
//! tile that starts at `|q|^2 + |r|^2` and accumulates `(-2 q_f) r_f` over the features: the
//! squared distance, with no product matrix in memory. A distance is offered to a row's list
//! only if it is within the list's `k`-th (the list's order is (distance, index)); the kernel
//! marks those with one comparison per register, and nearly all strips have none.
//!
//! Two passes, each a work item per block:
//! 1. a block against itself, so that every row's limit starts at the `k`-th of up to 47
//!    others rather than at infinity (which would let the next 48 offers all through);
//! 2. a block against every later block, each distance offered to both rows: to the block's
//!    own rows through lists private to the item, to the later rows through a lock per block,
//!    taken once per panel and only when something passes.
//!
//! So the products are half of `n^2 d`. Every distance is computed by the same operations in
//! the same order whichever side reads it, and a top-k list in a total order does not depend on
//! the order of offers: the result does not depend on the number of threads.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, TryLockError};

/// Query rows per register tile.
const ROWS: usize = 6;
/// Reference rows per register tile: two 8-wide registers per query row.
const LANES: usize = 16;
/// Rows per work item: a multiple of [`ROWS`] and [`LANES`], at most 64 (a bit per row in a
/// `u64`).
const BLOCK: usize = 48;
const _: () = assert!(BLOCK % ROWS == 0 && BLOCK % LANES == 0 && BLOCK <= 64);

/// The distances of one panel visit: the `BLOCK` query rows of a block x `LANES` references.
type Strip = [[f32; LANES]; BLOCK];

/// Which distances of a strip pass the limits: bit `l` of `own[r]` where query row `r`'s
/// distance to reference `l` is within `r`'s limit, bit `l` of `refs[r]` where it is within
/// `l`'s limit; bit `r` of `own_rows` and `ref_rows` where `own[r]`, `refs[r]` are not 0.
#[derive(Debug, Clone, Copy)]
struct Hits {
    own: [u16; BLOCK],
    refs: [u16; BLOCK],
    own_rows: u64,
    ref_rows: u64,
}

impl Hits {
    fn new(own: [u16; BLOCK], refs: [u16; BLOCK]) -> Self {
        let rows = |masks: &[u16; BLOCK]| {
            (masks.iter().enumerate()).fold(0, |m, (r, &o)| m | u64::from(o != 0) << r)
        };
        Hits {
            own_rows: rows(&own),
            ref_rows: rows(&refs),
            own,
            refs,
        }
    }
}

/// Indices of the set bits of `mask`, lowest first.
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let l = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            l
        })
    })
}

/// How strips are computed: chosen once from what the CPU has.
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

    /// Fills `out` with the distances between the block of rows from `first` and the panel of
    /// rows from `r0`, clamped at 0 (rounding can take a near-zero distance below); returns
    /// which are within the query row's `own` limit or a reference row's `refs` limit.
    fn strip(
        self,
        packed: &Packed,
        (first, r0): (usize, usize),
        own: &[f32; BLOCK],
        refs: &[f32; LANES],
        out: &mut Strip,
    ) -> Hits {
        let d = packed.d;
        let queries = &packed.queries[first * d..(first + BLOCK) * d];
        let panel = &packed.panels[r0 * d..(r0 + LANES) * d];
        let nq: &[f32; BLOCK] = packed.norms[first..first + BLOCK]
            .try_into()
            .expect("BLOCK norms");
        let nr: &[f32; LANES] = packed.norms[r0..r0 + LANES]
            .try_into()
            .expect("LANES norms");
        match self {
            Kernel::Portable => portable_strip(queries, panel, (nq, nr), (own, refs), out),
            // SAFETY: this kernel is only chosen on a CPU with AVX2 and FMA (`detect`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => unsafe { avx2::strip(queries, panel, (nq, nr), (own, refs), out) },
        }
    }
}

/// [`Kernel::strip`] in plain Rust: `max(0, |q|^2 + |r|^2 + sum_f (-2 q_f) r_f)`.
fn portable_strip(
    queries: &[f32],
    panel: &[f32],
    (nq, nr): (&[f32; BLOCK], &[f32; LANES]),
    (own, refs): (&[f32; BLOCK], &[f32; LANES]),
    out: &mut Strip,
) -> Hits {
    let d = panel.len() / LANES;
    for t in 0..BLOCK / ROWS {
        let queries = &queries[t * ROWS * d..(t + 1) * ROWS * d];
        // Indexed loops of fixed lengths over a local tile: the form compilers vectorise.
        let mut acc = [[0.0f32; LANES]; ROWS];
        for r in 0..ROWS {
            for l in 0..LANES {
                acc[r][l] = nq[t * ROWS + r] + nr[l];
            }
        }
        for f in 0..d {
            let p: &[f32; LANES] = panel[f * LANES..(f + 1) * LANES].try_into().expect("LANES");
            let q: &[f32; ROWS] = queries[f * ROWS..(f + 1) * ROWS].try_into().expect("ROWS");
            for r in 0..ROWS {
                for l in 0..LANES {
                    acc[r][l] += q[r] * p[l];
                }
            }
        }
        out[t * ROWS..(t + 1) * ROWS].copy_from_slice(&acc);
    }
    // Not `f32::max`: its NaN rule differs from the vector kernel's.
    for v in out.iter_mut().flatten() {
        *v = if *v > 0.0 { *v } else { 0.0 };
    }
    let mask = |within: &mut dyn FnMut(usize) -> bool| {
        (0..LANES).fold(0, |m, l| m | (u16::from(within(l)) << l))
    };
    let own = std::array::from_fn(|r| mask(&mut |l| out[r][l] <= own[r]));
    let refs = std::array::from_fn(|r| mask(&mut |l| out[r][l] <= refs[l]));
    Hits::new(own, refs)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Hits, Strip, BLOCK, LANES, ROWS};

    /// [`super::Kernel::strip`] in AVX2 registers: tiles of `ROWS` queries x `LANES`
    /// references, two 8-wide accumulators per query row, one fused multiply-add per feature
    /// each. The tests are one comparison per register.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn strip(
        queries: &[f32],
        panel: &[f32],
        (nq, nr): (&[f32; BLOCK], &[f32; LANES]),
        (own, refs): (&[f32; BLOCK], &[f32; LANES]),
        out: &mut Strip,
    ) -> Hits {
        let d = panel.len() / LANES;
        assert!(queries.len() == d * BLOCK && panel.len() == d * LANES);
        let p = panel.as_ptr();
        // SAFETY (every load below): `t < BLOCK / ROWS` and `f < d`, and the slices hold
        // `d * BLOCK` and `d * LANES` values, asserted above; the arrays hold what is read.
        let (nr0, nr1) = unsafe {
            (
                _mm256_loadu_ps(nr.as_ptr()),
                _mm256_loadu_ps(nr.as_ptr().add(8)),
            )
        };
        let ref_limit = unsafe {
            [
                _mm256_loadu_ps(refs.as_ptr()),
                _mm256_loadu_ps(refs.as_ptr().add(8)),
            ]
        };
        let zero = _mm256_setzero_ps();
        let mut hits = Hits {
            own: [0; BLOCK],
            refs: [0; BLOCK],
            own_rows: 0,
            ref_rows: 0,
        };
        for t in 0..BLOCK / ROWS {
            let q = unsafe { queries.as_ptr().add(t * ROWS * d) };
            let mut acc = [[zero; 2]; ROWS];
            for (a, &nq) in acc.iter_mut().zip(&nq[t * ROWS..]) {
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
            for (r, a) in acc.iter().enumerate() {
                let row = t * ROWS + r;
                let limit = _mm256_set1_ps(own[row]);
                let (mut own_mask, mut ref_mask) = (0, 0);
                for (h, (&v, o)) in a.iter().zip(out[row].chunks_exact_mut(8)).enumerate() {
                    // max(v, 0) is 0 for a NaN, as the portable kernel's test.
                    let v = _mm256_max_ps(v, zero);
                    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), v) };
                    let own = _mm256_cmp_ps::<_CMP_LE_OQ>(v, limit);
                    let refs = _mm256_cmp_ps::<_CMP_LE_OQ>(v, ref_limit[h]);
                    own_mask |= _mm256_movemask_ps(own) << (8 * h);
                    ref_mask |= _mm256_movemask_ps(refs) << (8 * h);
                }
                hits.own[row] = own_mask as u16;
                hits.refs[row] = ref_mask as u16;
                hits.own_rows |= u64::from(own_mask != 0) << row;
                hits.ref_rows |= u64::from(ref_mask != 0) << row;
            }
        }
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

    /// The `k` entries of row `row`: (distance, index), nearest first.
    fn row(&self, row: usize) -> impl Iterator<Item = (f32, u32)> + '_ {
        let entries = row * self.k..(row + 1) * self.k;
        self.dist[entries.clone()]
            .iter()
            .copied()
            .zip(self.index[entries].iter().copied())
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
        transpose_groups(data, d, -2.0, &mut packed.queries, ROWS);
        transpose_groups(data, d, 1.0, &mut packed.panels, LANES);
        packed
    }
}

/// Writes the rows of `data` (`d` wide) times `scale` into `out` group by group of `rows`
/// rows, each group `d x rows` (feature-major); what `out` holds past the data stays (zeros,
/// for the padding rows).
fn transpose_groups(data: &[f32], d: usize, scale: f32, out: &mut [f32], rows: usize) {
    for (x, out) in data.chunks(rows * d).zip(out.chunks_exact_mut(rows * d)) {
        for (f, out) in out.chunks_exact_mut(rows).enumerate() {
            for (o, x) in out.iter_mut().zip(x.chunks_exact(d)) {
                *o = scale * x[f];
            }
        }
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
    let blocks: Vec<usize> = (0..packed.norms.len() / BLOCK).collect();
    // Each block against itself first: a row's first limit is then the k-th of up to 47
    // others, not infinity, and the main pass offers far less.
    crate::parallel::parallel_map(&blocks, |&b| own_block(kernel, &packed, &shared, b));
    crate::parallel::parallel_map(&blocks, |&b| later_blocks(kernel, &packed, &shared, b, k));
    let mut out = Vec::with_capacity(packed.n * k);
    for lists in shared.lists {
        let lists = lists.into_inner().expect("no worker panicked");
        out.extend((0..BLOCK).flat_map(|r| lists.row(r).map(|(_, j)| j)));
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

    /// Offers each `(row, neighbour, distance)` of `offers`, under one lock per run of rows of
    /// one block. Unless `wait`, a run whose block is locked elsewhere stays in `offers` for
    /// a later call, and the caller carries on meanwhile.
    fn offer(&self, offers: &mut Vec<(u32, u32, f32)>, wait: bool) {
        let block_of = |e: &(u32, u32, f32)| e.0 as usize / BLOCK;
        let (mut start, mut kept) = (0, 0);
        while start < offers.len() {
            let owner = block_of(&offers[start]);
            let run = offers[start..]
                .iter()
                .take_while(|e| block_of(e) == owner)
                .count();
            let lock = &self.lists[owner];
            let lists = match lock.try_lock() {
                Ok(lists) => Some(lists),
                Err(TryLockError::WouldBlock) if wait => {
                    Some(lock.lock().expect("no worker panicked"))
                }
                Err(TryLockError::WouldBlock) => None,
                Err(TryLockError::Poisoned(_)) => panic!("a worker panicked"),
            };
            if let Some(mut lists) = lists {
                for &(j, i, dist) in &offers[start..start + run] {
                    let limit = lists.offer(j as usize - owner * BLOCK, dist, i);
                    self.limits[j as usize].store(limit.to_bits(), Ordering::Relaxed);
                }
            } else {
                offers.copy_within(start..start + run, kept);
                kept += run;
            }
            start += run;
        }
        offers.truncate(kept);
    }
}

/// Offers the strip's distances that `hits` marks to the query rows' lists (`lists`: the
/// rows of the block from `first`), never a row's own or a padding row's; keeps `limit` at the
/// lists' `k`-th, or at `cap` where lower.
fn offer_to_queries(
    (hits, strip): (&Hits, &Strip),
    (first, r0, n): (usize, usize, usize),
    lists: &mut Lists,
    limit: &mut [f32; BLOCK],
    cap: &[f32; BLOCK],
) {
    for r in bits(hits.own_rows) {
        let i = first + r;
        for l in bits(hits.own[r].into()) {
            let j = r0 + l;
            if j != i && j < n {
                limit[r] = lists.offer(r, strip[r][l], j as u32).min(cap[r]);
            }
        }
    }
}

/// The rows of block `b` against each other.
fn own_block(kernel: Kernel, packed: &Packed, shared: &Shared, b: usize) {
    let first = b * BLOCK;
    let mut lists = shared.lists[b].lock().expect("no worker panicked");
    let mut limit: [f32; BLOCK] = std::array::from_fn(|r| shared.limit(first + r));
    let cap = limit;
    let mut strip = [[0.0; LANES]; BLOCK];
    for r0 in (first..first + BLOCK).step_by(LANES) {
        let none = [f32::NEG_INFINITY; LANES];
        let hits = kernel.strip(packed, (first, r0), &limit, &none, &mut strip);
        let at = (first, r0, packed.n);
        offer_to_queries((&hits, &strip), at, &mut lists, &mut limit, &cap);
    }
    for (r, limit) in limit.iter().enumerate() {
        shared.limits[first + r].store(limit.to_bits(), Ordering::Relaxed);
    }
}

/// The rows of block `b` against the rows of every later block, offered to both.
fn later_blocks(kernel: Kernel, packed: &Packed, shared: &Shared, b: usize, k: usize) {
    let n = packed.n;
    let first = b * BLOCK;
    let panels = (packed.norms.len() - first - BLOCK) / LANES;
    if panels == 0 {
        return;
    }
    // The block's lists for this item, private while it runs (other items offer to the shared
    // lists meanwhile) and merged at the end. Nothing farther than the shared lists' k-th can
    // be among the nearest.
    let mut own = Lists::new(k);
    let cap: [f32; BLOCK] = std::array::from_fn(|r| shared.limit(first + r));
    let mut own_limit = cap;
    let mut strip = [[0.0; LANES]; BLOCK];
    // Offers to references not yet made: (reference row, query row, distance).
    let mut pending: Vec<(u32, u32, f32)> = Vec::new();
    // Items that run at the same time start their walk over the panels at scattered places,
    // so they seldom offer to the same block at once.
    let start = ((b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize;
    let walk = (0..panels).map(|p| first + BLOCK + (p + start) % panels * LANES);
    for r0 in walk {
        let ref_limit: [f32; LANES] = std::array::from_fn(|l| shared.limit(r0 + l));
        let hits = kernel.strip(packed, (first, r0), &own_limit, &ref_limit, &mut strip);
        let at = (first, r0, n);
        offer_to_queries((&hits, &strip), at, &mut own, &mut own_limit, &cap);
        if hits.ref_rows != 0 {
            for r in bits(hits.ref_rows).take_while(|r| first + r < n) {
                for l in bits(hits.refs[r].into()) {
                    pending.push(((r0 + l) as u32, (first + r) as u32, strip[r][l]));
                }
            }
            shared.offer(&mut pending, false);
        }
    }
    for r in 0..BLOCK.min(n - first) {
        pending.extend(own.row(r).map(|(dist, j)| ((first + r) as u32, j, dist)));
    }
    shared.offer(&mut pending, true);
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
            // Many blocks and many ties: offers from both threads meet in the same lists.
            (3000, 2, 7),
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
