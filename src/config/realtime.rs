//! Settings of what arrives on its own and what is pushed: providers' webhooks and GraphQL subscriptions.

use std::time::Duration;

use anyhow::bail;

use crate::env::Env;

pub use crate::webhooks::WebhookSettings;

/// GraphQL subscriptions over WebSocket (`/graphql/ws`).
#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    /// Active subscriptions one connection may hold; one more gets an error for that operation.
    pub max_per_connection: usize,
    /// Open connections one caller (token subject) may hold.
    pub max_connections_per_caller: usize,
    /// Open connections at most, before or after `connection_init` (503 beyond).
    pub max_connections: usize,
    /// `connection_init` must arrive and be accepted within this.
    pub init_timeout: Duration,
    /// A ping every this often (a WebSocket ping and the protocol's own).
    pub ping_interval: Duration,
    /// Nothing from the client for this long (pongs count): the connection is dropped.
    pub idle_timeout: Duration,
    /// One message must be written within this, or the subscriber is too slow and is closed.
    pub send_timeout: Duration,
    /// Events buffered for each subscriber; one that falls further behind is closed.
    pub buffer: usize,
    /// The largest message accepted from a client.
    pub max_message_bytes: usize,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            max_per_connection: 20,
            max_connections_per_caller: 10,
            max_connections: 10_000,
            init_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(5),
            buffer: 256,
            max_message_bytes: 64 * 1024,
        }
    }
}

pub(super) fn webhooks(env: &Env<'_>) -> anyhow::Result<WebhookSettings> {
    let d = WebhookSettings::default();
    let settings = WebhookSettings {
        max_body_bytes: env.parse("KYC_GATEWAY_WEBHOOK_MAX_BYTES", d.max_body_bytes)?,
        worker: env.switch("KYC_GATEWAY_WEBHOOK_WORKER", d.worker)?,
        poll_interval: env.millis("KYC_GATEWAY_WEBHOOK_POLL_MS", d.poll_interval)?,
        ..d
    };
    if settings.max_body_bytes < 1024 || settings.poll_interval.is_zero() {
        bail!("KYC_GATEWAY_WEBHOOK_MAX_BYTES must be at least 1024 and KYC_GATEWAY_WEBHOOK_POLL_MS at least 1");
    }
    Ok(settings)
}

pub(super) fn subscriptions(env: &Env<'_>) -> anyhow::Result<SubscriptionSettings> {
    let d = SubscriptionSettings::default();
    let settings = SubscriptionSettings {
        max_per_connection: env.parse("KYC_GATEWAY_WS_MAX_SUBSCRIPTIONS", d.max_per_connection)?,
        max_connections_per_caller: env
            .parse("KYC_GATEWAY_WS_MAX_CONNECTIONS_PER_CALLER", d.max_connections_per_caller)?,
        max_connections: env.parse("KYC_GATEWAY_WS_MAX_CONNECTIONS", d.max_connections)?,
        init_timeout: env.secs("KYC_GATEWAY_WS_INIT_TIMEOUT_SECS", d.init_timeout)?,
        ping_interval: env.secs("KYC_GATEWAY_WS_PING_SECS", d.ping_interval)?,
        idle_timeout: env.secs("KYC_GATEWAY_WS_IDLE_TIMEOUT_SECS", d.idle_timeout)?,
        send_timeout: env.millis("KYC_GATEWAY_WS_SEND_TIMEOUT_MS", d.send_timeout)?,
        buffer: env.parse("KYC_GATEWAY_WS_BUFFER", d.buffer)?,
        max_message_bytes: d.max_message_bytes,
    };
    if settings.max_per_connection == 0
        || settings.max_connections_per_caller == 0
        || settings.max_connections == 0
        || settings.buffer == 0
    {
        bail!("KYC_GATEWAY_WS_MAX_SUBSCRIPTIONS, _MAX_CONNECTIONS_PER_CALLER, _MAX_CONNECTIONS and _BUFFER must be at least 1");
    }
    if settings.ping_interval.is_zero() || settings.idle_timeout <= settings.ping_interval {
        bail!("KYC_GATEWAY_WS_IDLE_TIMEOUT_SECS must be longer than KYC_GATEWAY_WS_PING_SECS (at least 1)");
    }
    Ok(settings)
}
