//! Fractal ID: OAuth tokens (per user, rotating; and the client-credentials token for statistics), `GET /v2/users/me`
//! and the `/v2/stats/*` endpoints.

mod client;
mod mapping;
pub mod models;
pub mod webhook;

pub use client::{FractalClient, FractalConfig};
