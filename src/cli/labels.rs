//! Labels as codes of one sorted dictionary: 4 bytes a row where a `String` per row (24 bytes
//! and a heap block) would take most of a large table's memory.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use smrt::{Error, Strategy};

/// The label names, sorted; set once per process.
static NAMES: OnceLock<Vec<String>> = OnceLock::new();

/// A label: its code among the sorted names, so codes order as the names do (and every seed
/// derived from a class's position is the same as with the names themselves).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Class(u32);

impl Class {
    /// The label as written.
    pub fn name(self) -> &'static str {
        &NAMES.get().expect("labels interned first")[self.0 as usize]
    }

    /// The class named `name`, if the data has it.
    pub fn find(name: &str) -> Option<Class> {
        let names = NAMES.get()?;
        names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| Class(i as u32))
    }
}

impl fmt::Debug for Class {
    /// As the name's own `Debug` (quoted), so messages read as they would with the names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.name(), f)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl AsRef<str> for Class {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

/// The codes of `labels`. Sets the process's dictionary: call once.
pub fn intern(labels: &[String]) -> Vec<Class> {
    let distinct: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
    let names: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    let names = NAMES.get_or_init(|| names);
    let index: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    labels.iter().map(|l| Class(index[l.as_str()])).collect()
}

/// `strategy` over codes; a class it names that the data lacks is the error the strategy itself
/// would give.
pub fn strategy(strategy: Strategy<String>) -> Result<Strategy<Class>, Error> {
    Ok(match strategy {
        Strategy::NotMajority => Strategy::NotMajority,
        Strategy::Minority => Strategy::Minority,
        Strategy::Ratio(r) => Strategy::Ratio(r),
        Strategy::Targets(targets) => Strategy::Targets(
            targets
                .into_iter()
                .map(|(name, n)| {
                    Class::find(&name)
                        .map(|c| (c, n))
                        .ok_or_else(|| Error::UnknownClass(format!("{name:?}")))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_order_as_the_names_and_print_as_them() {
        // The only test that sets the process's dictionary.
        let y: Vec<String> = ["b", "a", "c", "a"].iter().map(|s| s.to_string()).collect();
        let codes = intern(&y);
        assert_eq!(
            codes.iter().map(|c| c.name()).collect::<Vec<_>>(),
            ["b", "a", "c", "a"]
        );
        assert!(codes[1] < codes[0] && codes[0] < codes[2]);
        assert_eq!(codes[1], codes[3]);
        assert_eq!(format!("{:?}", codes[0]), "\"b\"");
        assert_eq!(format!("[{:<3}]", codes[2]), "[c  ]");
        assert_eq!(Class::find("c"), Some(codes[2]));
        assert_eq!(Class::find("z"), None);
        let t = strategy(Strategy::Targets(
            [("a".to_string(), 5)].into_iter().collect(),
        ))
        .unwrap();
        assert_eq!(t, Strategy::Targets([(codes[1], 5)].into_iter().collect()));
        let e = strategy(Strategy::Targets(
            [("z".to_string(), 5)].into_iter().collect(),
        ));
        assert!(e.unwrap_err().to_string().contains("\"z\""));
    }
}
