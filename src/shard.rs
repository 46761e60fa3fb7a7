//! Shards: the `K`-th of `S` contiguous slices of a run of rows, so that `S` jobs, each writing
//! its own slice, together write exactly what one job would. Every row smrt draws is addressed by
//! (seed, purpose, index), so a slice is computed without the rows before it.

use std::ops::Range;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The `index`-th (from 1) of `count` contiguous slices of a run of rows.
///
/// ```
/// use smrt::shard::Shard;
/// let shards: Vec<Shard> = (1..=3).map(|k| Shard::new(k, 3).unwrap()).collect();
/// let slices: Vec<_> = shards.iter().map(|s| s.range(10)).collect();
/// assert_eq!(slices, vec![0..3, 3..6, 6..10]);
/// assert_eq!("2/3".parse::<Shard>()?, shards[1]);
/// # Ok::<(), smrt::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The whole run, as one shard.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Shard `index` of `count`; `1 <= index <= count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index == 0 || index > count {
            return Err(Error::config(
                "shard",
                format!("{index}/{count}: need 1 <= K <= S in K/S"),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Which shard, from 1.
    pub fn index(self) -> usize {
        self.index
    }

    /// How many shards.
    pub fn count(self) -> usize {
        self.count
    }

    /// Whether this is the first shard (the one that writes a file's header).
    pub fn is_first(self) -> bool {
        self.index == 1
    }

    /// This shard's rows of a run of `n`: from `n (K - 1) / S` to `n K / S`, rounded down, so
    /// the slices differ in size by at most one row and cover the run exactly.
    pub fn range(self, n: usize) -> Range<usize> {
        let at = |k: usize| (n as u128 * k as u128 / self.count as u128) as usize;
        at(self.index - 1)..at(self.index)
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `K/S`, for example `2/8`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::config("shard", format!("{s:?} is not K/S (for example 2/8)"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_run_exactly_once_in_order() {
        for n in [0, 1, 2, 7, 100, 1_000_003] {
            for count in [1, 2, 3, 7, 64] {
                let mut next = 0;
                for index in 1..=count {
                    let r = Shard::new(index, count).unwrap().range(n);
                    assert_eq!(r.start, next, "n {n} shard {index}/{count}");
                    assert!(r.len() == n / count || r.len() == n / count + 1);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn bad_shards_are_errors_with_the_text() {
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("shard"), "{bad}: {e}");
        }
        assert_eq!(
            " 2 / 5 ".trim().parse::<Shard>().unwrap(),
            Shard::new(2, 5).unwrap()
        );
    }
}
