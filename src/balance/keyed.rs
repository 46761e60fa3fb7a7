//! Under-sampling decided row by row from a stable row key, so that pieces of a table held on
//! different machines decide alone and together decide exactly what one machine would.
//!
//! Each class that shrinks gets a keep rate, `target / count` from the [`Strategy`] applied to
//! the whole table's class counts; a row is kept when the 64-bit xxh3 hash of its key (seeded
//! with the seed) falls below that rate of the hash range. The decision depends on the key, the
//! seed and the rate only: not on the row's position, the piece it is in, or the other rows.
//!
//! The counts kept are right in expectation, not exactly: a class of `n` rows kept at rate `p`
//! keeps a binomial `B(n, p)` count, standard deviation `sqrt(n p (1 - p))` (for example 300 rows
//! around 100,000 when 10% of a million rows are kept: 0.3%). Equal keys get equal decisions, so
//! keys should be unique.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::strategy::{Label, Strategy};

/// The keep rate of each class that shrinks (`target / count`, in (0, 1)), from `strategy`
/// applied to the whole table's `counts` ([`Strategy::rows_to_keep`]); classes absent keep every
/// row.
///
/// ```
/// use std::collections::BTreeMap;
/// use smrt::{balance::keyed::keep_rates, Strategy};
/// let counts = BTreeMap::from([("big", 1000), ("small", 100)]);
/// let rates = keep_rates(&Strategy::NotMajority, &counts)?;
/// assert_eq!(rates, BTreeMap::from([("big", 0.1)]));
/// # Ok::<(), smrt::Error>(())
/// ```
pub fn keep_rates<L: Label>(
    strategy: &Strategy<L>,
    counts: &BTreeMap<L, usize>,
) -> Result<BTreeMap<L, f64>> {
    let keep = strategy.rows_to_keep(counts)?;
    Ok(keep
        .into_iter()
        .map(|(label, target)| {
            let rate = target as f64 / counts[&label] as f64;
            (label, rate)
        })
        .collect())
}

/// Whether the row with key `key` is kept at keep rate `rate`: `xxh3_64(key, seed) / 2^64 <
/// rate` (the top 53 bits of the hash as a uniform number in [0, 1)). Rate 1 keeps every key,
/// rate 0 none.
///
/// ```
/// use smrt::balance::keyed::keeps;
/// let kept = (0..10_000).filter(|i| keeps(format!("row-{i}").as_bytes(), 7, 0.25)).count();
/// assert!((2_300..2_700).contains(&kept));
/// assert!(keeps(b"row-1", 7, 1.0) && !keeps(b"row-1", 7, 0.0));
/// ```
pub fn keeps(key: &[u8], seed: u64, rate: f64) -> bool {
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(key, seed);
    ((hash >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < rate
}

/// The rows kept of a table whose row `i` has key `keys[i]` and label `y[i]`, in order: every
/// row of a class without a rate, the others by [`keeps`].
pub fn kept_rows<L: Label, K: AsRef<[u8]>>(
    keys: &[K],
    y: &[L],
    rates: &BTreeMap<L, f64>,
    seed: u64,
) -> Result<Vec<usize>> {
    if keys.len() != y.len() {
        return Err(Error::ShapeMismatch {
            what: "row keys (one per row)",
            expected: y.len(),
            got: keys.len(),
        });
    }
    Ok((keys.iter().zip(y).enumerate())
        .filter(|(_, (key, label))| {
            rates
                .get(label)
                .is_none_or(|&r| keeps(key.as_ref(), seed, r))
        })
        .map(|(i, _)| i)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_decide_alone_what_the_whole_decides() {
        let keys: Vec<String> = (0..5_000).map(|i| format!("id{i:05}")).collect();
        let y: Vec<u8> = (0..5_000).map(|i| u8::from(i % 10 == 0)).collect();
        let counts = BTreeMap::from([(0u8, 4_500), (1u8, 500)]);
        let rates = keep_rates(&Strategy::NotMajority, &counts).unwrap();
        let whole = kept_rows(&keys, &y, &rates, 3).unwrap();
        // Three uneven pieces, each deciding from its own rows.
        let mut pieces = Vec::new();
        for (start, end) in [(0, 1_234), (1_234, 4_000), (4_000, 5_000)] {
            let part = kept_rows(&keys[start..end], &y[start..end], &rates, 3).unwrap();
            pieces.extend(part.into_iter().map(|i| i + start));
        }
        assert_eq!(pieces, whole);
        // Every minority row kept; the majority near 500 (sd = sqrt(4500 p (1 - p)) = 21).
        let kept_major = whole.iter().filter(|&&i| y[i] == 0).count();
        assert_eq!(whole.len() - kept_major, 500);
        assert!(
            (500 - 4 * 21..=500 + 4 * 21).contains(&kept_major),
            "{kept_major}"
        );
        // Another seed, other rows.
        assert_ne!(kept_rows(&keys, &y, &rates, 4).unwrap(), whole);
    }
}
