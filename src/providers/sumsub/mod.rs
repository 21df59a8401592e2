//! Sumsub: signed requests (`X-App-Token`, `X-App-Access-Ts`, `X-App-Access-Sig`) and applicants read by our own
//! user id (`externalUserId`).

mod client;
mod mapping;
pub mod models;
pub mod webhook;

pub use client::{signature, SumsubClient, SumsubConfig};
