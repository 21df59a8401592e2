//! The words the gateway and its sandbox providers both speak, as the providers' documentation publishes them:
//! levels and add-ons (items), the scope names built from them, the details field table and Sumsub's rejection
//! labels. One copy, so the gateway and the sandbox never disagree about a word; nothing here decides anything.

pub mod details;
pub mod items;
pub mod scopes;
pub mod sumsub_labels;

pub use items::{level_items, ADD_ONS, LEVELS, WALLET_CURRENCIES};
