//! Sampling strategies: how many rows each class should have after balancing.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use crate::error::{Error, Result};

/// What a class label must support: integers, strings and most enums qualify. (`Send + Sync`
/// because classes are trained on separate threads.)
pub trait Label: Clone + Eq + Hash + Ord + Debug + Send + Sync {}
impl<T: Clone + Eq + Hash + Ord + Debug + Send + Sync> Label for T {}

/// Which classes are resampled, and to what size.
///
/// The majority class is the one with the most rows (ties: every tied class counts as majority).
/// Over-samplers read each variant as documented; under-samplers
/// ([`crate::RandomUnderSampler`]) read its mirror image (see [`Strategy::rows_to_keep`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Strategy<L> {
    /// Every class except the majority is brought up to the majority count. The default.
    #[default]
    NotMajority,
    /// Only the smallest class (ties: the smallest label) is brought up to the majority count.
    Minority,
    /// Every class is brought up to at least `floor(r * majority count)`, `r` in (0, 1]; classes
    /// already that large are left alone.
    ///
    /// Unlike imbalanced-learn's float `sampling_strategy`, which is defined only for two classes,
    /// this applies to every class of multiclass data.
    Ratio(f32),
    /// The final count of each named class; classes not named are left alone. A target below a
    /// class's current count is an error (this is over-sampling).
    Targets(BTreeMap<L, usize>),
}

impl<L: Label> Strategy<L> {
    /// Checks the strategy's own parameters (not the data).
    pub fn validate(&self) -> Result<()> {
        if let Strategy::Ratio(r) = *self {
            if !(r > 0.0 && r <= 1.0) {
                return Err(Error::config("ratio", format!("{r} is outside (0, 1]")));
            }
        }
        Ok(())
    }

    /// How many synthetic rows to add to each class, given the current `counts`. Classes that need
    /// none are absent from the result.
    pub fn samples_to_add(&self, counts: &BTreeMap<L, usize>) -> Result<BTreeMap<L, usize>> {
        self.validate()?;
        let majority = counts.values().copied().max().unwrap_or(0);
        let up_to = |target: usize| -> BTreeMap<L, usize> {
            counts
                .iter()
                .filter(|&(_, &c)| c < target)
                .map(|(l, &c)| (l.clone(), target - c))
                .collect()
        };
        Ok(match self {
            Strategy::NotMajority => up_to(majority),
            Strategy::Ratio(r) => up_to((f64::from(*r) * majority as f64).floor() as usize),
            Strategy::Minority => {
                // BTreeMap iterates labels in order, so `min_by_key` keeps the smallest label on ties.
                let smallest = counts.iter().min_by_key(|&(_, &c)| c);
                smallest
                    .filter(|&(_, &c)| c < majority)
                    .map(|(l, &c)| (l.clone(), majority - c))
                    .into_iter()
                    .collect()
            }
            Strategy::Targets(targets) => {
                let mut add = BTreeMap::new();
                for (label, &target) in targets {
                    let Some(&have) = counts.get(label) else {
                        return Err(Error::UnknownClass(format!("{label:?}")));
                    };
                    if target < have {
                        return Err(Error::config(
                            "targets",
                            format!("class {label:?} has {have} rows, more than its target {target}; over-sampling never removes rows"),
                        ));
                    }
                    if target > have {
                        add.insert(label.clone(), target - have);
                    }
                }
                add
            }
        })
    }
}

impl<L: Label> Strategy<L> {
    /// For under-sampling: how many rows to keep of each class that shrinks, given `counts`
    /// (with `m` the minority count, the smallest class's):
    /// - `NotMajority` (the default): every class down to `m` (imbalanced-learn's `not minority`);
    /// - `Minority`: only the majority class down to `m` (imbalanced-learn's `majority`);
    /// - `Ratio(r)`: every class down to at most `ceil(m / r)`;
    /// - `Targets`: each named class down to its target (a target above the class's count is an
    ///   error: under-sampling never adds rows).
    ///
    /// Classes left alone are absent from the result.
    pub fn rows_to_keep(&self, counts: &BTreeMap<L, usize>) -> Result<BTreeMap<L, usize>> {
        self.validate()?;
        let minority = counts.values().copied().min().unwrap_or(0);
        let majority = counts.values().copied().max().unwrap_or(0);
        let down_to = |cap: usize, only_majority: bool| -> BTreeMap<L, usize> {
            counts
                .iter()
                .filter(|&(_, &c)| c > cap && (!only_majority || c == majority))
                .map(|(l, _)| (l.clone(), cap))
                .collect()
        };
        Ok(match self {
            Strategy::NotMajority => down_to(minority, false),
            Strategy::Minority => down_to(minority, true),
            Strategy::Ratio(r) => down_to((minority as f64 / f64::from(*r)).ceil() as usize, false),
            Strategy::Targets(targets) => {
                let mut keep = BTreeMap::new();
                for (label, &target) in targets {
                    let Some(&have) = counts.get(label) else {
                        return Err(Error::UnknownClass(format!("{label:?}")));
                    };
                    if target > have {
                        return Err(Error::config(
                            "targets",
                            format!("class {label:?} has {have} rows, fewer than its target {target}; under-sampling never adds rows"),
                        ));
                    }
                    if target < have {
                        keep.insert(label.clone(), target);
                    }
                }
                keep
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> BTreeMap<&'static str, usize> {
        [("a", 100), ("b", 10), ("c", 40), ("d", 10)]
            .into_iter()
            .collect()
    }

    #[test]
    fn not_majority_fills_every_other_class() {
        let add = Strategy::NotMajority.samples_to_add(&counts()).unwrap();
        assert_eq!(add, [("b", 90), ("c", 60), ("d", 90)].into_iter().collect());
    }

    #[test]
    fn minority_takes_smallest_label_on_ties() {
        let add = Strategy::Minority.samples_to_add(&counts()).unwrap();
        assert_eq!(add, [("b", 90)].into_iter().collect());
    }

    #[test]
    fn ratio_floors_and_leaves_large_classes() {
        let add = Strategy::Ratio(0.355).samples_to_add(&counts()).unwrap();
        // floor(35.5) = 35: c (40) already there.
        assert_eq!(add, [("b", 25), ("d", 25)].into_iter().collect());
        for bad in [0.0, -0.5, 1.01, f32::NAN] {
            assert!(matches!(
                Strategy::<&str>::Ratio(bad).samples_to_add(&counts()),
                Err(Error::InvalidConfig { name: "ratio", .. })
            ));
        }
    }

    #[test]
    fn under_sampling_mirrors_each_strategy() {
        let c = counts(); // a 100, b 10, c 40, d 10
        let keep = |s: Strategy<&'static str>| s.rows_to_keep(&c).unwrap();
        assert_eq!(
            keep(Strategy::NotMajority),
            [("a", 10), ("c", 10)].into_iter().collect()
        );
        assert_eq!(keep(Strategy::Minority), [("a", 10)].into_iter().collect());
        // ceil(10 / 0.3) = 34: a and c shrink to it.
        assert_eq!(
            keep(Strategy::Ratio(0.3)),
            [("a", 34), ("c", 34)].into_iter().collect()
        );
        let t = Strategy::Targets([("a", 50), ("b", 10)].into_iter().collect());
        assert_eq!(keep(t), [("a", 50)].into_iter().collect());
        let grow = Strategy::Targets([("b", 11)].into_iter().collect());
        assert!(grow.rows_to_keep(&c).is_err());
    }

    #[test]
    fn targets_checked_against_classes() {
        let t = Strategy::Targets([("b", 12), ("c", 40)].into_iter().collect());
        assert_eq!(
            t.samples_to_add(&counts()).unwrap(),
            [("b", 2)].into_iter().collect()
        );
        let unknown = Strategy::Targets([("z", 12)].into_iter().collect());
        assert!(matches!(
            unknown.samples_to_add(&counts()),
            Err(Error::UnknownClass(_))
        ));
        let shrink = Strategy::Targets([("a", 12)].into_iter().collect());
        assert!(shrink.samples_to_add(&counts()).is_err());
    }
}
