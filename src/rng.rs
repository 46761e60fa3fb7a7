//! The one random generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
//!
//! Counter-based: a draw is a pure function of `(seed, purpose, step, index)`, so any element of any
//! random tensor can be computed independently, in any order, on any engine. The WGSL engine mirrors
//! exactly this mapping; change it only together with the shader.
//!
//! Mapping: key = `[seed_lo, seed_hi]`; element `i` of a stream lives in lane `i % 4` of the block
//! with counter `[(i/4)_lo, (i/4)_hi, step, purpose]`.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: the block function.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// What a random stream is used for; part of the counter, so streams never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Purpose {
    /// Per-class seeds derived from the user's seed.
    ClassSeed = 1,
    /// Weight initialisation (step = layer).
    Init = 2,
    /// Epoch shuffles (step = epoch).
    Shuffle = 3,
    /// Reparameterisation noise during training (step = optimizer step).
    Noise = 4,
    /// Dropout masks (step = optimizer step * 64 + layer).
    Dropout = 5,
    /// Latent draws at generation time.
    Generate = 6,
    /// Choice of source rows for posterior generation.
    Choose = 7,
    /// Shuffle of a balanced output.
    OutputShuffle = 8,
    /// SMOTE's choices of row, neighbour and gap (step = class).
    Smote = 9,
    /// Random over-sampling's row choices and shrinkage noise (step = class).
    RandomOver = 10,
    /// Random under-sampling's choice of rows to keep (step = class).
    RandomUnder = 11,
    /// The rows a report compares when a class has more than it needs (step = class).
    Report = 12,
    /// A sample of a class's rows read for fitting (step = class, in order of first
    /// appearance; element = the class's row number).
    Sample = 13,
}

/// One random stream: `(seed, purpose, step)`; elements are addressed by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    /// The seed (the Philox key).
    pub seed: u64,
    /// What the stream is for.
    pub purpose: Purpose,
    /// Epoch, step or layer, depending on the purpose.
    pub step: u32,
}

impl Stream {
    /// A stream for `purpose` at `step`.
    pub fn new(seed: u64, purpose: Purpose, step: u32) -> Self {
        Stream {
            seed,
            purpose,
            step,
        }
    }

    /// The four 32-bit words of block `block`.
    pub fn block(&self, block: u64) -> [u32; 4] {
        philox4x32_10(
            [
                block as u32,
                (block >> 32) as u32,
                self.step,
                self.purpose as u32,
            ],
            [self.seed as u32, (self.seed >> 32) as u32],
        )
    }

    /// The 32-bit word at `index`.
    pub fn u32_at(&self, index: u64) -> u32 {
        self.block(index / 4)[(index % 4) as usize]
    }

    /// A uniform draw in the open interval (0, 1) at `index`.
    pub fn uniform_at(&self, index: u64) -> f32 {
        unit_open(self.u32_at(index))
    }

    /// An integer uniform in `0..n` at `index` (see [`below`]).
    pub fn below_at(&self, index: u64, n: u32) -> u32 {
        below(self.u32_at(index), n)
    }

    /// Fills `out` with standard normal draws for elements `offset..offset + out.len()`.
    ///
    /// Box–Muller on each block: lanes (0, 1) and (2, 3) give one (radius, angle) pair each;
    /// element lane 0/1 takes `r0 cos`, `r0 sin`, lane 2/3 takes `r1 cos`, `r1 sin`.
    pub fn fill_normal(&self, offset: u64, out: &mut [f32]) {
        let mut cached: Option<(u64, [f32; 4])> = None;
        for (i, o) in out.iter_mut().enumerate() {
            let index = offset + i as u64;
            let block = index / 4;
            let normals = match cached {
                Some((b, n)) if b == block => n,
                _ => {
                    let n = box_muller(self.block(block));
                    cached = Some((block, n));
                    n
                }
            };
            *o = normals[(index % 4) as usize];
        }
    }

    /// One standard normal draw at `index`.
    pub fn normal_at(&self, index: u64) -> f32 {
        box_muller(self.block(index / 4))[(index % 4) as usize]
    }

    /// A derived seed, for sub-streams keyed by `index` (for example one per class).
    pub fn derive_seed(&self, index: u64) -> u64 {
        let b = self.block(index);
        u64::from(b[0]) | (u64::from(b[1]) << 32)
    }
}

/// Maps a 32-bit word to an integer in `0..n` (Lemire's multiply-shift; bias below 2^-32 * n).
pub fn below(word: u32, n: u32) -> u32 {
    ((u64::from(word) * u64::from(n)) >> 32) as u32
}

/// Maps a 32-bit word to a float in (0, 1): the top 24 bits plus one half ulp.
pub fn unit_open(x: u32) -> f32 {
    ((x >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// Four standard normals from one Philox block.
fn box_muller(w: [u32; 4]) -> [f32; 4] {
    let pair = |a: u32, b: u32| {
        let r = (-2.0 * unit_open(a).ln()).sqrt();
        let theta = std::f32::consts::TAU * unit_open(b);
        (r * theta.cos(), r * theta.sin())
    };
    let (n0, n1) = pair(w[0], w[1]);
    let (n2, n3) = pair(w[2], w[3]);
    [n0, n1, n2, n3]
}

/// A uniform sample of `keep` of the rows `0..n` (all of them, in order, when `n <= keep`) by
/// reservoir sampling (Vitter's Algorithm R), the rows in slot order: row `i >= keep` replaces
/// slot [`reservoir_slot`]`(stream, i)` when that is below `keep`. One pass, `keep` slots of
/// memory; the same decisions as a reader that samples rows as it reads them.
pub fn reservoir_sample(stream: &Stream, n: usize, keep: usize) -> Vec<usize> {
    let mut slots: Vec<usize> = (0..n.min(keep)).collect();
    for i in keep..n {
        let j = reservoir_slot(stream, i as u64) as usize;
        if j < keep {
            slots[j] = i;
        }
    }
    slots
}

/// Algorithm R's draw for row `i`: uniform in `0..=i`, from the 64-bit word at element `i` of
/// `stream` (the high half of `word * (i + 1)`).
pub fn reservoir_slot(stream: &Stream, i: u64) -> u64 {
    ((u128::from(stream.derive_seed(i)) * u128::from(i + 1)) >> 64) as u64
}

/// A permutation of `0..n` drawn from `stream` (Fisher–Yates, one word per position).
pub fn permutation(stream: &Stream, n: usize) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = stream.below_at(i as u64, i as u32 + 1) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 with 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn normals_have_unit_moments() {
        let s = Stream::new(7, Purpose::Noise, 3);
        let mut v = vec![0.0f32; 200_000];
        s.fill_normal(0, &mut v);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        // Element access is independent of the offset the slice starts at.
        let mut tail = vec![0.0f32; 5];
        s.fill_normal(1001, &mut tail);
        assert_eq!(tail, v[1001..1006]);
        assert_eq!(s.normal_at(1003), v[1003]);
    }

    #[test]
    fn streams_differ_by_every_key_part() {
        let base = Stream::new(1, Purpose::Noise, 0);
        let others = [
            Stream::new(2, Purpose::Noise, 0),
            Stream::new(1, Purpose::Dropout, 0),
            Stream::new(1, Purpose::Noise, 1),
        ];
        for o in others {
            assert_ne!(base.block(0), o.block(0));
        }
    }

    #[test]
    fn permutation_is_a_permutation_and_seeded() {
        let p = permutation(&Stream::new(5, Purpose::Shuffle, 0), 1000);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        assert_ne!(p, (0..1000).collect::<Vec<u32>>());
        assert_eq!(p, permutation(&Stream::new(5, Purpose::Shuffle, 0), 1000));
        assert_ne!(p, permutation(&Stream::new(6, Purpose::Shuffle, 0), 1000));
    }
}
