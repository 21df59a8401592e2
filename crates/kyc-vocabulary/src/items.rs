//! Items: the levels and add-ons a verification covers (Fractal's developer documentation, "Scopes"). Every
//! provider's level maps to these, so that one scope model covers every provider.

/// The KYC levels.
pub const LEVELS: [&str; 3] = ["uniqueness", "basic", "plus"];

/// The add-ons, which a case may carry beside its level.
pub const ADD_ONS: [&str; 16] = [
    "liveness",
    "selfie",
    "sow",
    "ssn",
    "telegram",
    "twitter",
    "uniq",
    "idos",
    "wallet",
    "wallet-ada",
    "wallet-algo",
    "wallet-btc",
    "wallet-eth",
    "wallet-kar",
    "wallet-sol",
    "wallet-substrate",
];

/// The wallet currencies, as the wallet add-ons and scopes name them (`wallet-eth`).
pub const WALLET_CURRENCIES: [&str; 9] = ["ada", "algo", "btc", "eth", "kar", "sol", "substrate", "sui", "xrp"];

/// The items of a level string: `"plus+selfie"` -> `["plus", "selfie"]` (trimmed, lower-case, without repeats).
pub fn level_items(level: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in level.split('+').map(|i| i.trim().to_ascii_lowercase()) {
        if !item.is_empty() && !items.contains(&item) {
            items.push(item);
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_strings_split_into_items() {
        assert_eq!(level_items("plus+selfie"), ["plus", "selfie"]);
        assert_eq!(level_items(" Basic + liveness+basic"), ["basic", "liveness"]);
        assert!(level_items("").is_empty());
    }
}
