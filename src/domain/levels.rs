//! Provider levels -> items, from configuration, so that one scope model covers every provider: a
//! `basic-kyc-level` case mapped to `basic+selfie+liveness` needs `verification.basic:read`,
//! `verification.selfie:read` and `verification.liveness:read`.

use std::collections::HashMap;

use super::level_items;

pub use kyc_vocabulary::{ADD_ONS, LEVELS};

/// One provider's level names and the items each covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelMap(HashMap<String, Vec<String>>);

impl LevelMap {
    /// Parses `name=item+item;name=item` (whitespace around parts is ignored).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, items) =
                entry.split_once('=').ok_or_else(|| format!("{entry:?} is not of the form level=item+item"))?;
            let items = level_items(items);
            if name.trim().is_empty() || items.is_empty() {
                return Err(format!("{entry:?} needs a level name and at least one item"));
            }
            map.insert(name.trim().to_owned(), items);
        }
        Ok(LevelMap(map))
    }

    /// These mappings, plus those of `defaults` for levels these do not name.
    pub fn under(mut self, defaults: LevelMap) -> Self {
        for (level, items) in defaults.0 {
            self.0.entry(level).or_insert(items);
        }
        self
    }

    /// The items of `level`. A level the configuration does not name is its own single item, which no standard
    /// scope grants: an unmapped level stays hidden rather than guessed.
    pub fn items(&self, level: &str) -> Vec<String> {
        self.0.get(level).cloned().unwrap_or_else(|| vec![level.trim().to_ascii_lowercase()])
    }
}

impl std::fmt::Display for LevelMap {
    /// The `level=item+item; level=item` form [`LevelMap::parse`] reads, levels in name order.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut levels: Vec<_> = self.0.iter().collect();
        levels.sort();
        let parts: Vec<String> = levels.iter().map(|(level, items)| format!("{level}={}", items.join("+"))).collect();
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_unknown_levels_stay_their_own_item() {
        let map = LevelMap::parse("basic-kyc-level=basic+selfie+liveness; kyb=plus").expect("valid");
        assert_eq!(map.items("basic-kyc-level"), ["basic", "selfie", "liveness"]);
        assert_eq!(map.items("kyb"), ["plus"]);
        assert_eq!(map.items("Secret-Level"), ["secret-level"]);
        assert!(LevelMap::parse("nothing").is_err());
        assert_eq!(LevelMap::parse(&map.to_string()).expect("round trip"), map);
        assert!(LevelMap::parse("a=").is_err());
    }
}
