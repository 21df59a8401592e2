//! GraphQL subscriptions over WebSocket at `/graphql/ws` (token and close codes: docs/operations.md, "Subscriptions").
//! async-graphql's protocol engine runs in a socket loop of our own: the stock `GraphQLWebSocket::serve` cannot close
//! the socket from outside (token expiry, a slow subscriber, shutdown), never pings and bounds no subscriptions.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::http::{WebSocket as Engine, WebSocketProtocols as Protocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::parser::types::OperationType;
use async_graphql::Data;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{interval_at, sleep, timeout, Instant, MissedTickBehavior};

use super::connections::{caller_key, CallerSlot, Open};
use super::serve::{ConnectionSlot, Upgraded};
use super::AppState;
use crate::graphql::errors::ErrorCode;

/// Close codes.
mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY: u16 = 4429;
}

/// Client messages waiting for the engine; more than this at once is a client flooding the connection.
const INBOUND_QUEUE: usize = 64;
/// The longest operation id (a close reason quoting it must fit in a close frame's 123 bytes).
const MAX_ID: usize = 64;
/// The most bytes of a close frame's reason (RFC 6455 §5.5: control frames carry at most 125 bytes).
const MAX_REASON: usize = 123;

/// `reason`, cut to fit a close frame on a character boundary.
fn close_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// What `connection_init` decided, for the socket loop (the engine itself only knows accept or 1002).
#[derive(Default)]
struct InitOutcome {
    reject: Option<(u16, String)>,
    /// Unix seconds at which the token expires.
    expires_at: Option<i64>,
    /// The caller's connection slot, held as long as the connection.
    slot: Option<CallerSlot>,
}

/// The token of a `connection_init` payload.
fn token_of(payload: &serde_json::Value) -> Option<String> {
    let field = |v: &serde_json::Value, names: &[&str]| {
        names.iter().find_map(|n| v.get(*n).and_then(|t| t.as_str()).map(str::to_owned))
    };
    let bearer = field(payload, &["Authorization", "authorization"])
        .or_else(|| payload.get("headers").and_then(|h| field(h, &["Authorization", "authorization"])));
    match bearer {
        Some(value) => {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
        }
        None => field(payload, &["token"]),
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    slot: Option<Extension<ConnectionSlot>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let authorization = match super::authorization(&headers) {
        Ok(value) => value,
        Err(refused) => return refused.into_response(),
    };
    // axum picks the first of *our* protocols the client offered and announces it; the engine must speak that one.
    let ws = ws.protocols(ALL_WEBSOCKET_PROTOCOLS);
    let Some(protocol) = ws.selected_protocol().and_then(|v| v.to_str().ok()).and_then(|s| Protocols::from_str(s).ok())
    else {
        let message = "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws";
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    let header_token = authorization.and_then(|v| {
        v.trim().split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim().to_owned())
    });
    let Some(open) = state.connections.open() else {
        let message = "too many WebSocket connections on this replica; retry shortly";
        return (StatusCode::SERVICE_UNAVAILABLE, [(axum::http::header::RETRY_AFTER, "1")], message).into_response();
    };
    let limit = state.subscriptions.max_message_bytes;
    ws.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| {
        let slot = slot.map(|Extension(slot)| slot.upgraded());
        serve(socket, state, protocol, header_token, open, slot)
    })
}

enum Exit {
    /// Send a close frame, then let the client close.
    Close(u16, String),
    /// The client sent a close frame.
    ClientClosed,
    /// The peer is gone or cannot be written to.
    Drop,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    #[serde(default)]
    payload: Option<SubscribePayload>,
}

#[derive(Deserialize)]
struct SubscribePayload {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    /// `persistedQuery` (a document sent by its hash) is looked up before the operation's type is decided.
    #[serde(default)]
    extensions: Option<serde_json::Value>,
}

type Tx = SplitSink<WebSocket, Message>;

/// Writes to the socket on its own task, so a client that stops reading stalls only its writer (the socket loop closes
/// the connection when the bounded `events` queue is full). Control messages go first. Ends after a close frame, a
/// failed write, or one write longer than `send_timeout`.
async fn write(
    mut tx: Tx,
    mut control: mpsc::Receiver<Message>,
    mut events: mpsc::Receiver<Message>,
    send_timeout: Duration,
) {
    loop {
        let message = tokio::select! {
            biased;
            Some(message) = control.recv() => message,
            Some(message) = events.recv() => message,
            else => return,
        };
        let closing = matches!(message, Message::Close(_));
        match timeout(send_timeout, tx.send(message)).await {
            Ok(Ok(())) if !closing => {}
            _ => return,
        }
    }
}

/// The socket loop's side of the writer.
struct Outbound {
    control: mpsc::Sender<Message>,
    events: mpsc::Sender<Message>,
}

impl Outbound {
    /// Queues a protocol message; a full queue means the subscriber is not keeping up.
    fn text(&self, text: String) -> Result<(), Exit> {
        match self.events.try_send(Message::Text(text.into())) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(Exit::Close(code::TRY_AGAIN_LATER, "subscriber too slow: it fell behind its buffer".into()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Exit::Drop),
        }
    }

    /// Queues a ping; skipped when pings are already waiting.
    fn ping(&self, message: Message) -> Result<(), Exit> {
        match self.control.try_send(message) {
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Exit::Drop),
            _ => Ok(()),
        }
    }
}

/// The operations of one connection, as the socket loop sees them: the ids running, and the client's `complete`s
/// the engine has not confirmed yet. The engine handles the client's messages in order, so a stream the client
/// completed has ended before any later `subscribe` starts one: the bound counts the running ids only.
#[derive(Default)]
struct Operations {
    /// Ids the client started and the server has not completed.
    active: HashSet<String>,
    /// The client's `complete`s (or `stop`s) of each id that the engine has not confirmed yet: an id may be completed
    /// and subscribed again several times before the engine answers, and each confirmation must be told from the
    /// end of the stream subscribed again.
    completing: HashMap<String, usize>,
}

impl Operations {
    fn is_active(&self, id: &str) -> bool {
        self.active.contains(id)
    }

    /// What the bound on subscriptions per connection counts.
    fn counted(&self) -> usize {
        self.active.len()
    }

    fn start(&mut self, id: String) {
        self.active.insert(id);
    }

    /// The client's `complete`: whether it ends a running operation (and so goes to the engine).
    fn client_completes(&mut self, id: &str) -> bool {
        if !self.active.remove(id) {
            return false;
        }
        *self.completing.entry(id.to_owned()).or_default() += 1;
        true
    }

    /// The engine's `complete`: `true` when it confirms one of the client's (which graphql-transport-ws does not
    /// expect), `false` when the server ended the operation itself.
    fn engine_completed(&mut self, id: &str) -> bool {
        if let Some(waiting) = self.completing.get_mut(id) {
            *waiting -= 1;
            if *waiting == 0 {
                self.completing.remove(id);
            }
            // The id may be subscribed again already: `active` is left alone.
            return true;
        }
        self.active.remove(id);
        false
    }
}

/// An operation-level error message (the connection stays).
fn operation_error(protocol: Protocols, id: &str, message: &str, code: ErrorCode) -> String {
    let error = serde_json::json!({ "message": message, "extensions": { "code": code.as_str() } });
    match protocol {
        Protocols::GraphQLWS => serde_json::json!({ "type": "error", "id": id, "payload": [error] }),
        Protocols::SubscriptionsTransportWS => serde_json::json!({ "type": "error", "id": id, "payload": error }),
    }
    .to_string()
}

/// The document a `subscribe` payload runs: its `query`, else the persisted or safelisted document its
/// `extensions.persistedQuery` names (`None` when there is none: the engine answers why).
async fn document_of(state: &AppState, payload: Option<&SubscribePayload>) -> Option<String> {
    let payload = payload?;
    if let Some(query) = payload.query.as_deref().filter(|q| !q.is_empty()) {
        return Some(query.to_owned());
    }
    let mut request = async_graphql::Request::new(String::new());
    request.extensions = serde_json::from_value(payload.extensions.clone()?).ok()?;
    // A lookup only: a document sent with its text is registered by the policy once it has passed the checks.
    state.bounds.trusted.resolve(&mut request).await.ok()?;
    Some(request.query)
}

/// Whether a `subscribe` payload (its document as [`document_of`] found it) is a subscription: queries and mutations go
/// over HTTP, with their own loaders, limits and audit record. A document not found, or failing the pre-scan or parse,
/// is left to the engine, which answers the error (its request policy refuses any query or mutation).
fn is_subscription(state: &AppState, document: Option<&str>, payload: Option<&SubscribePayload>) -> bool {
    let Some(query) = document else { return true };
    if crate::graphql::prescan(query, &state.bounds.limits).is_err() {
        return true;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else { return true };
    let name = payload.and_then(|p| p.operation_name.as_deref());
    let operation = document.operations.iter().find(|(n, _)| name.is_none() || n.map(|n| n.as_str()) == name);
    operation.is_none_or(|(_, op)| op.node.ty == OperationType::Subscription)
}

/// Serves one socket. `slot` is its place among the replica's open connections (`serve.rs`), held until it closes:
/// until its caller is identified the socket may be closed (1013) to make room for a new connection.
async fn serve(
    socket: WebSocket,
    state: AppState,
    protocol: Protocols,
    header_token: Option<String>,
    _open: Open,
    mut slot: Option<Upgraded>,
) {
    let settings = state.subscriptions.clone();
    let (tx, mut rx) = socket.split();
    let (control, control_rx) = mpsc::channel::<Message>(8);
    let (events, events_rx) = mpsc::channel::<Message>(settings.buffer);
    let mut writer = tokio::spawn(write(tx, control_rx, events_rx, settings.send_timeout));
    let outbound = Outbound { control, events };
    let (inbound, inbound_rx) = mpsc::channel::<String>(INBOUND_QUEUE);
    let outcome = Arc::new(Mutex::new(InitOutcome::default()));

    let on_init = {
        let (outcome, state) = (outcome.clone(), state.clone());
        move |payload: serde_json::Value| async move {
            let token = token_of(&payload).or(header_token);
            let verified = match token.as_deref() {
                Some(token) => Some(state.verifier.verify_with_expiry(token).await),
                None => None,
            };
            let mut outcome = outcome.lock().expect("init outcome");
            let (principal, expires_at) = match verified {
                Some(Ok(verified)) => verified,
                Some(Err(error)) => {
                    outcome.reject = Some((code::FORBIDDEN, format!("Forbidden: {error}")));
                    return Err(async_graphql::Error::new(error.to_string()));
                }
                None => {
                    outcome.reject = Some((code::FORBIDDEN, "Forbidden: missing bearer token".into()));
                    return Err(async_graphql::Error::new("missing bearer token"));
                }
            };
            let Some(slot) = state.connections.per_caller.admit(&caller_key(&principal)) else {
                let most = state.subscriptions.max_connections_per_caller;
                let reason = format!("too many connections for this caller (at most {most})");
                outcome.reject = Some((code::TOO_MANY, reason.clone()));
                return Err(async_graphql::Error::new(reason));
            };
            outcome.expires_at = Some(expires_at);
            outcome.slot = Some(slot);
            let mut data = Data::default();
            data.insert(principal);
            Ok(data)
        }
    };
    let inbound_stream =
        futures_util::stream::unfold(inbound_rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let mut engine = Box::pin(Engine::new(state.schema.clone(), inbound_stream, protocol).on_connection_init(on_init));

    let mut shutdown = state.shutdown.clone();
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopping);
    let (mut acked, mut init_received) = (false, false);
    let init_deadline = sleep(settings.init_timeout);
    tokio::pin!(init_deadline);
    let expiry = sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(expiry);
    let mut ping = interval_at(Instant::now() + settings.ping_interval, settings.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    let mut operations = Operations::default();

    let exit = loop {
        let evicted = async {
            match &slot {
                Some(slot) => slot.evicted().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stopping => break Exit::Close(code::GOING_AWAY, "server shutting down".into()),
            _ = evicted, if !acked => {
                break Exit::Close(code::TRY_AGAIN_LATER, "the server is at its bound on connections".into())
            }
            _ = &mut init_deadline, if !acked => {
                break Exit::Close(code::INIT_TIMEOUT, "Connection initialisation timeout".into())
            }
            _ = &mut expiry, if acked => break Exit::Close(code::FORBIDDEN, "token expired".into()),
            _ = ping.tick() => {
                if last_seen.elapsed() > settings.idle_timeout {
                    break Exit::Drop;
                }
                if let Err(exit) = outbound.ping(Message::Ping(Bytes::from_static(b"ka"))) {
                    break exit;
                }
                if acked {
                    let keep_alive = match protocol {
                        Protocols::GraphQLWS => r#"{"type":"ping"}"#,
                        Protocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
                    };
                    if let Err(exit) = outbound.ping(Message::Text(keep_alive.into())) {
                        break exit;
                    }
                }
            }
            out = engine.next() => match out {
                Some(WsMessage::Text(text)) => {
                    if let Ok(envelope) = serde_json::from_str::<Envelope>(&text) {
                        match (envelope.kind.as_str(), envelope.id) {
                            ("connection_ack", _) => {
                                acked = true;
                                if slot.as_mut().is_some_and(|slot| !slot.identified()) {
                                    break Exit::Close(
                                        code::TRY_AGAIN_LATER,
                                        "the server is at its bound on connections".into(),
                                    );
                                }
                                if let Some(at) = outcome.lock().expect("init outcome").expires_at {
                                    let left = (at - crate::clock::unix_seconds()).max(0) as u64;
                                    expiry.as_mut().reset(Instant::now() + Duration::from_secs(left));
                                }
                            }
                            ("complete", Some(id)) => {
                                // graphql-transport-ws expects no echo of the client's own `complete`.
                                let confirmation = operations.engine_completed(&id);
                                if confirmation && protocol == Protocols::GraphQLWS {
                                    continue;
                                }
                            }
                            _ => {}
                        }
                    }
                    if let Err(exit) = outbound.text(text) {
                        break exit;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let (code, reason) = outcome.lock().expect("init outcome").reject.take().unwrap_or((code, reason));
                    break Exit::Close(code, reason);
                }
                // The legacy protocol ends its stream after `connection_error` or `connection_terminate`.
                None => {
                    let rejected = outcome.lock().expect("init outcome").reject.take();
                    let (code, reason) = rejected.unwrap_or((code::NORMAL, String::new()));
                    break Exit::Close(code, reason);
                }
            },
            frame = rx.next() => {
                let text = match frame {
                    None | Some(Err(_)) => break Exit::Drop,
                    Some(Ok(Message::Close(_))) => break Exit::ClientClosed,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        last_seen = Instant::now();
                        continue;
                    }
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text,
                        Err(_) => break Exit::Close(code::BAD_REQUEST, "Invalid message received".into()),
                    },
                };
                last_seen = Instant::now();
                let Ok(envelope) = serde_json::from_str::<Envelope>(&text) else {
                    break Exit::Close(code::BAD_REQUEST, "Invalid message received".into());
                };
                match (envelope.kind.as_str(), envelope.id) {
                    ("subscribe" | "start", Some(id)) => {
                        // Legacy clients send `start` right after `connection_init` without waiting for the ack; the
                        // engine holds it until the init is decided.
                        let ready = if protocol == Protocols::GraphQLWS { acked } else { init_received };
                        if !ready {
                            break Exit::Close(code::UNAUTHORIZED, "Unauthorized".into());
                        }
                        if id.len() > MAX_ID {
                            break Exit::Close(code::BAD_REQUEST, "Invalid message received: id too long".into());
                        }
                        if operations.is_active(&id) {
                            if protocol == Protocols::GraphQLWS {
                                break Exit::Close(code::SUBSCRIBER_EXISTS, format!("Subscriber for {id} already exists"));
                            }
                            continue;
                        }
                        let document = document_of(&state, envelope.payload.as_ref()).await;
                        let refusal = if !is_subscription(&state, document.as_deref(), envelope.payload.as_ref()) {
                            Some(("only subscriptions go over WebSocket; send queries and mutations to POST /graphql".to_owned(), ErrorCode::BadRequest))
                        } else if operations.counted() >= settings.max_per_connection {
                            let message = format!("too many subscriptions on this connection (at most {})", settings.max_per_connection);
                            Some((message, ErrorCode::TooManySubscriptions))
                        } else {
                            None
                        };
                        if let Some((message, error_code)) = refusal {
                            let answer = operation_error(protocol, &id, &message, error_code);
                            if let Err(exit) = outbound.text(answer) {
                                break exit;
                            }
                            continue;
                        }
                        operations.start(id);
                    }
                    ("complete" | "stop", Some(id)) => {
                        if !operations.client_completes(&id) {
                            continue;
                        }
                    }
                    ("connection_init", _) => {
                        if init_received && protocol == Protocols::GraphQLWS {
                            break Exit::Close(code::TOO_MANY, "Too many initialisation requests".into());
                        }
                        init_received = true;
                    }
                    ("ping" | "pong" | "connection_terminate", _) => {}
                    _ => break Exit::Close(code::BAD_REQUEST, "Invalid message received".into()),
                }
                if inbound.try_send(text).is_err() {
                    break Exit::Close(code::TOO_MANY, "too many messages".into());
                }
            }
        }
    };
    // The subscriptions end here; what is queued still goes out, then the close frame.
    drop(engine);
    // Finish the closing handshake: after our close frame (or theirs), read on until the client closes, so the close
    // frame is not lost to a reset of a socket with unread bytes. A client that reads nothing gets `send_timeout`.
    let drain = async { while let Some(Ok(_)) = rx.next().await {} };
    match exit {
        Exit::Close(code, reason) => {
            tracing::debug!(code, %reason, "closing a WebSocket connection");
            let close = Message::Close(Some(CloseFrame { code, reason: close_reason(reason).into() }));
            // Behind what is queued (an operation's last error, a legacy `connection_error`), unless the queue is
            // full (the client is not reading): then ahead of it.
            let queued = match outbound.events.try_send(close) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(close) | mpsc::error::TrySendError::Closed(close)) => {
                    outbound.control.send(close).await.map_err(|_| ())
                }
            };
            if queued.is_ok() {
                let _ = timeout(settings.send_timeout + Duration::from_secs(2), async {
                    let _ = (&mut writer).await;
                    drain.await;
                })
                .await;
            }
        }
        Exit::ClientClosed => {
            drop(outbound);
            let _ = timeout(Duration::from_secs(1), async {
                let _ = (&mut writer).await;
                drain.await;
            })
            .await;
        }
        Exit::Drop => {}
    }
    writer.abort();
    // The caller's slot and the open count go with `outcome` and `_open`.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_the_client_completed_leaves_room_for_the_next_at_once() {
        // The engine handles the client's messages in order: the completed stream has ended before a later
        // `subscribe` starts one, whether or not its confirmation came back yet.
        let mut operations = Operations::default();
        operations.start("a".into());
        assert!(operations.client_completes("a"));
        assert_eq!(operations.counted(), 0);
        operations.start("b".into());
        assert_eq!(operations.counted(), 1);
        assert!(operations.engine_completed("a"), "the confirmation of the client's complete");
        assert!(operations.is_active("b") && operations.counted() == 1);
    }

    #[test]
    fn an_id_completed_and_subscribed_again_twice_before_the_engine_answers_stays_counted() {
        let mut operations = Operations::default();
        operations.start("x".into());
        assert!(operations.client_completes("x"));
        operations.start("x".into());
        assert!(operations.client_completes("x"));
        operations.start("x".into());
        assert!(operations.engine_completed("x") && operations.engine_completed("x"), "two confirmations");
        assert!(operations.is_active("x"), "the third stream of x still runs");
        assert_eq!(operations.counted(), 1);
        assert!(!operations.engine_completed("x"), "the server ending it");
        assert_eq!(operations.counted(), 0);
    }
}
