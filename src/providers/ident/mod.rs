//! Provide's `ident`: KYC applications dispatched to Vouched and IdentityMind, read and written with the gateway's
//! application token.

mod client;
mod mapping;
pub mod models;
pub mod webhook;

pub use client::{IdentClient, IdentConfig};
