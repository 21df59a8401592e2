//! Sila Advanced KYC: an 8-hour bearer token from `/0.2/auth_token`, then `/0.2/get_verifications` per user handle,
//! every call carrying a fresh `header`.

mod client;
mod mapping;
pub mod models;
pub mod webhook;

pub use client::{SilaClient, SilaConfig};
