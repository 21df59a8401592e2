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

    /// Every item one of its levels covers.
    pub fn all_items(&self) -> impl Iterator<Item = &str> {
        self.0.values().flatten().map(String::as_str)
    }
}

/// The items of `items` that no case can carry: neither a standard level or add-on nor one of `mapped` (what the
/// configured providers' level maps give). A provider level no map names is its own item, which no scope grants, so
/// asking about such an item is a mistake, not a question.
pub fn unknown_items<'a>(items: &'a [String], mapped: &[String]) -> Vec<&'a str> {
    let known = |item: &str| LEVELS.contains(&item) || ADD_ONS.contains(&item) || mapped.iter().any(|m| m == item);
    items.iter().map(String::as_str).filter(|item| !known(item)).collect()
}

/// Why `unknown` (from [`unknown_items`]) were refused, naming every known item.
pub fn unknown_items_message(unknown: &[&str], mapped: &[String]) -> String {
    // The caller's own words, bounded.
    let named: Vec<String> =
        unknown.iter().map(|item| format!("{:?}", item.chars().take(40).collect::<String>())).collect();
    let mut message = format!(
        "{} is neither a level nor an add-on: the levels are {}; the add-ons are {}",
        named.join(" and "),
        LEVELS.join(", "),
        ADD_ONS.join(", ")
    );
    let mut configured: Vec<&str> =
        mapped.iter().map(String::as_str).filter(|item| !LEVELS.contains(item) && !ADD_ONS.contains(item)).collect();
    configured.sort_unstable();
    configured.dedup();
    if !configured.is_empty() {
        message.push_str(&format!("; this gateway's level maps also give {}", configured.join(", ")));
    }
    message
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

    #[test]
    fn an_item_is_known_when_it_is_a_standard_level_or_add_on_or_a_level_map_gives_it() {
        let map = LevelMap::parse("kyc-gold=basic+gold").expect("valid");
        let items: Vec<String> = ["plus", "wallet-eth", "gold", "platinum"].map(String::from).to_vec();
        let mapped: Vec<String> = map.all_items().map(str::to_owned).collect();
        assert_eq!(unknown_items(&items, &mapped), ["platinum"]);
        assert_eq!(unknown_items(&items, &[]), ["gold", "platinum"]);
        let message = unknown_items_message(&["platinum"], &mapped);
        assert!(message.starts_with(r#""platinum" is neither a level nor an add-on: the levels are uniqueness, basic"#));
        assert!(message.ends_with("; this gateway's level maps also give gold"), "{message}");
    }
}
