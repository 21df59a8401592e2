//! The sandbox providers, in the order they start: the first defines the population the others draw from. Adding a
//! provider is a folder and one line here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{SandboxProvider, SandboxSettings};

/// A provider starting.
pub type Started<'a> = Pin<Box<dyn Future<Output = std::io::Result<Arc<dyn SandboxProvider>>> + Send + 'a>>;

/// Starts one provider for the users known so far.
pub type Start = for<'a> fn(&'a SandboxSettings, &'a [String]) -> Started<'a>;

pub const PROVIDERS: &[Start] =
    &[crate::fractal::start, crate::sumsub::start, crate::sila::start, crate::ident::start, crate::veriff::start];

/// A provider's start, as the registry holds it.
pub fn started<'a, P: SandboxProvider>(start: impl Future<Output = std::io::Result<P>> + Send + 'a) -> Started<'a> {
    Box::pin(async move { Ok(Arc::new(start.await?) as Arc<dyn SandboxProvider>) })
}
