//! Webhook delivery for the sandbox providers, each signing its own body: [`WebhookSender`] posts to every target
//! ([`WebhookSender::set_targets`]) at least once, retried then given up, with optional duplicates and reordering
//! (docs/operations.md, "Sandbox webhooks"). Logs never name a body (it holds user ids), a signature or a target.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use super::support::{admin_body_limit, admin_json};
use crate::settings::SandboxWebhookSettings;

/// Headers one attempt carries besides `content-type` (the signature, an event id, ...).
pub type Headers = Vec<(&'static str, String)>;

/// Computes the headers of one attempt from the raw body. Called again for every attempt: ident signs the attempt's
/// own timestamp.
pub type Signer = Arc<dyn Fn(&[u8]) -> Headers + Send + Sync>;

/// One event: the exact bytes every attempt sends, and how an attempt is signed.
#[derive(Clone)]
pub struct WebhookEvent {
    body: Bytes,
    sign: Signer,
}

impl WebhookEvent {
    pub fn new(body: Vec<u8>, sign: impl Fn(&[u8]) -> Headers + Send + Sync + 'static) -> Self {
        WebhookEvent { body: Bytes::from(body), sign: Arc::new(sign) }
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The headers an attempt made now would carry.
    pub fn headers(&self) -> Headers {
        (self.sign)(&self.body)
    }
}

/// What a sender has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookCounts {
    /// Events handed to [`WebhookSender::send`].
    pub sent: u64,
    /// Deliveries a target answered with a 2xx (one event, duplicated, to two targets: four).
    pub delivered: u64,
    /// Attempts answered with another status, or not answered in time.
    pub failed_attempts: u64,
    /// Deliveries whose every attempt failed, the retry schedule exhausted.
    pub given_up: u64,
    /// Events dropped because no target was set.
    pub undeliverable: u64,
}

/// Delivers one sandbox provider's webhooks. Cheap to clone: clones share targets, settings and counters.
#[derive(Clone)]
pub struct WebhookSender {
    inner: Arc<Inner>,
}

struct Inner {
    provider: &'static str,
    client: reqwest::Client,
    targets: RwLock<Vec<String>>,
    settings: RwLock<SandboxWebhookSettings>,
    /// Events held by the reorder window, oldest first, each still counted as pending. Not empty means a flush is
    /// scheduled.
    held: Mutex<Vec<(WebhookEvent, Pending)>>,
    /// Deliveries under way or waiting for a retry, plus held events: [`WebhookSender::idle`] waits for zero.
    pending: watch::Sender<usize>,
    sent: AtomicU64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    given_up: AtomicU64,
    undeliverable: AtomicU64,
}

/// One unit of pending work, released when dropped (also when its task is aborted with the runtime).
struct Pending(Arc<Inner>);

impl Pending {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.pending.send_modify(|n| *n += 1);
        Pending(inner.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.send_modify(|n| *n -= 1);
    }
}

impl WebhookSender {
    /// A sender for `provider` (a name for logs) whose every attempt gives up after `timeout`: the provider's
    /// documented delivery timeout (Fractal 10 s, Sumsub and ident 5 s; Sila asks receivers to answer fast).
    pub fn new(provider: &'static str, timeout: Duration, settings: SandboxWebhookSettings) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // The providers post to the configured URL only; a receiver that redirects has a wrong URL configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kyc-gateway-sandbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        WebhookSender {
            inner: Arc::new(Inner {
                provider,
                client,
                targets: RwLock::new(Vec::new()),
                settings: RwLock::new(settings),
                held: Mutex::new(Vec::new()),
                pending: watch::Sender::new(0),
                sent: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                failed_attempts: AtomicU64::new(0),
                given_up: AtomicU64::new(0),
                undeliverable: AtomicU64::new(0),
            }),
        }
    }

    pub fn provider(&self) -> &'static str {
        self.inner.provider
    }

    /// Where events go from now on (full URLs); empty drops them.
    pub fn set_targets(&self, targets: Vec<String>) {
        *self.inner.targets.write().expect("targets lock") = targets;
    }

    pub fn targets(&self) -> Vec<String> {
        self.inner.targets.read().expect("targets lock").clone()
    }

    /// Changes retries, duplication, reordering and Sumsub's digest for events sent from now on.
    pub fn set_settings(&self, settings: SandboxWebhookSettings) {
        *self.inner.settings.write().expect("settings lock") = settings;
    }

    pub fn settings(&self) -> SandboxWebhookSettings {
        self.inner.settings.read().expect("settings lock").clone()
    }

    pub fn counts(&self) -> WebhookCounts {
        let i = &self.inner;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        WebhookCounts {
            sent: get(&i.sent),
            delivered: get(&i.delivered),
            failed_attempts: get(&i.failed_attempts),
            given_up: get(&i.given_up),
            undeliverable: get(&i.undeliverable),
        }
    }

    /// Resolves once no delivery is under way, waiting for a retry, or held by the reorder window.
    pub async fn idle(&self) {
        let mut pending = self.inner.pending.subscribe();
        // The sender lives in `inner`, which `self` holds: the channel cannot close while this waits.
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Delivers `event` to every target, each delivery in its own task; returns at once. Needs a Tokio runtime.
    pub fn send(&self, event: WebhookEvent) {
        let inner = &self.inner;
        inner.sent.fetch_add(1, Ordering::Relaxed);
        let window = inner.settings.read().expect("settings lock").reorder_window;
        if window.is_zero() {
            dispatch(inner, vec![event]);
            return;
        }
        let mut held = inner.held.lock().expect("held lock");
        let opens_window = held.is_empty();
        held.push((event, Pending::new(inner)));
        drop(held);
        if opens_window {
            let inner = inner.clone();
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                let batch = std::mem::take(&mut *inner.held.lock().expect("held lock"));
                // Newest first; the held events stay pending until their deliveries are.
                let (events, held): (Vec<WebhookEvent>, Vec<Pending>) = batch.into_iter().rev().unzip();
                dispatch(&inner, events);
                drop(held);
            });
        }
    }
}

/// Starts the deliveries of `events`, in this order, to every current target. Within one call, each delivery to a
/// target makes its first attempt only after the one before it made its first: a reordered batch, or an event and its
/// duplicate, reaches a target in a known order. Retries then run on their own.
fn dispatch(inner: &Arc<Inner>, events: Vec<WebhookEvent>) {
    let targets = inner.targets.read().expect("targets lock").clone();
    if targets.is_empty() {
        inner.undeliverable.fetch_add(events.len() as u64, Ordering::Relaxed);
        tracing::debug!(provider = inner.provider, events = events.len(), "sandbox webhook dropped: no target is set");
        return;
    }
    let (schedule, copies) = {
        let settings = inner.settings.read().expect("settings lock");
        (Arc::<[Duration]>::from(settings.retry_schedule.as_slice()), if settings.duplicate { 2 } else { 1 })
    };
    for target in targets {
        let target: Arc<str> = target.into();
        let mut previous: Option<oneshot::Receiver<()>> = None;
        for event in &events {
            for _ in 0..copies {
                let (first_done, next) = oneshot::channel();
                let delivery = Delivery {
                    inner: inner.clone(),
                    target: target.clone(),
                    event: event.clone(),
                    schedule: schedule.clone(),
                };
                let after = previous.replace(next);
                tokio::spawn(delivery.run(after, first_done, Pending::new(inner)));
            }
        }
    }
}

/// Why an attempt failed, as logged: never the target or the body.
enum Failure {
    Status(StatusCode),
    Timeout,
    Unreachable,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(status) => write!(f, "{}", status.as_u16()),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Unreachable => f.write_str("unreachable"),
        }
    }
}

/// One event to one target, with its retries.
struct Delivery {
    inner: Arc<Inner>,
    target: Arc<str>,
    event: WebhookEvent,
    schedule: Arc<[Duration]>,
}

impl Delivery {
    async fn run(self, after: Option<oneshot::Receiver<()>>, first_done: oneshot::Sender<()>, _pending: Pending) {
        if let Some(after) = after {
            // An error means the delivery before this one is gone (its runtime stopped): go anyway.
            let _ = after.await;
        }
        let mut first_done = Some(first_done);
        let provider = self.inner.provider;
        for attempt in 1.. {
            let outcome = self.attempt().await;
            if let Some(done) = first_done.take() {
                let _ = done.send(());
            }
            let failure = match outcome {
                Ok(status) => {
                    self.inner.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(provider, status = status.as_u16(), attempt, "sandbox webhook delivered");
                    return;
                }
                Err(failure) => failure,
            };
            self.inner.failed_attempts.fetch_add(1, Ordering::Relaxed);
            let Some(wait) = self.schedule.get(attempt - 1) else {
                self.inner.given_up.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(provider, status = %failure, attempt, "sandbox webhook given up after its last attempt");
                return;
            };
            tracing::info!(provider, status = %failure, attempt, "sandbox webhook attempt failed; retrying");
            tokio::time::sleep(*wait).await;
        }
    }

    async fn attempt(&self) -> Result<StatusCode, Failure> {
        let mut request = self
            .inner
            .client
            .post(&*self.target)
            .header(header::CONTENT_TYPE, "application/json")
            .body(self.event.body.clone());
        for (name, value) in self.event.headers() {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(response.status()),
            Ok(response) => Err(Failure::Status(response.status())),
            // reqwest's error text names the URL: only its kind is kept.
            Err(e) if e.is_timeout() => Err(Failure::Timeout),
            Err(_) => Err(Failure::Unreachable),
        }
    }
}

/// The most targets `PUT /_sandbox/webhooks` takes, and the longest URL.
const MAX_TARGETS: usize = 8;
const MAX_TARGET_LEN: usize = 2048;

#[derive(Serialize)]
struct WebhooksStatus {
    targets: Vec<String>,
    counts: WebhookCounts,
    retry_schedule_ms: Vec<u64>,
    duplicate: bool,
    reorder_window_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsInput {
    targets: Vec<String>,
}

async fn show(State(sender): State<WebhookSender>) -> Json<WebhooksStatus> {
    let settings = sender.settings();
    Json(WebhooksStatus {
        targets: sender.targets(),
        counts: sender.counts(),
        retry_schedule_ms: settings.retry_schedule.iter().map(|d| d.as_millis() as u64).collect(),
        duplicate: settings.duplicate,
        reorder_window_ms: settings.reorder_window.as_millis() as u64,
    })
}

async fn change(State(sender): State<WebhookSender>, body: Result<Bytes, BytesRejection>) -> Response {
    let refuse = |status: StatusCode, message: String| (status, Json(serde_json::json!({ "error": message })));
    let input: TargetsInput = match admin_json(body) {
        Ok(input) => input,
        Err((status, message)) => return refuse(status, message).into_response(),
    };
    let valid = |t: &String| {
        t.len() <= MAX_TARGET_LEN
            && reqwest::Url::parse(t).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
    };
    if input.targets.len() > MAX_TARGETS || !input.targets.iter().all(valid) {
        let message = format!("targets: at most {MAX_TARGETS} http(s) URLs of at most {MAX_TARGET_LEN} characters");
        return refuse(StatusCode::BAD_REQUEST, message).into_response();
    }
    sender.set_targets(input.targets);
    show(State(sender)).await.into_response()
}

/// `GET /_sandbox/webhooks` (targets, counts, settings) and `PUT /_sandbox/webhooks` (`{"targets": [URL, ...]}`):
/// where a sandbox started by `cargo run` sends its webhooks, for a receiver other than the gateway.
pub fn admin(sender: WebhookSender) -> Router {
    Router::new().route("/_sandbox/webhooks", get(show).put(change).layer(admin_body_limit())).with_state(sender)
}

/// A receiver for the sandboxes' tests: records every request and answers 500 to the first `fail_first`.
#[cfg(test)]
pub(crate) mod receiver {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::Router;

    #[derive(Debug, Clone)]
    pub struct Received {
        pub path: String,
        pub headers: HeaderMap,
        pub body: Bytes,
    }

    impl Received {
        pub fn header(&self, name: &str) -> &str {
            self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
        }

        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).expect("a JSON body")
        }
    }

    struct Inner {
        received: Mutex<Vec<Received>>,
        fail_first: AtomicUsize,
        delay: Mutex<Duration>,
    }

    #[derive(Clone)]
    pub struct Receiver {
        url: String,
        inner: Arc<Inner>,
    }

    async fn record(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
        let delay = *inner.delay.lock().expect("delay lock");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let failing = inner.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        inner.received.lock().expect("received lock").push(Received { path: uri.path().to_owned(), headers, body });
        if failing {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }

    /// Sandbox settings for tests: a small population and retries a few milliseconds apart.
    pub fn quick_settings() -> crate::settings::SandboxSettings {
        crate::settings::SandboxSettings {
            users: 20,
            webhooks: crate::settings::SandboxWebhookSettings {
                retry_schedule: vec![Duration::from_millis(5); 3],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The lowercase hex HMAC of `message` under `key`, computed here rather than by the code under test.
    pub fn hmac_hex(algorithm: ring::hmac::Algorithm, key: &str, message: &[u8]) -> String {
        let tag = ring::hmac::sign(&ring::hmac::Key::new(algorithm, key.as_bytes()), message);
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Waits (at most 10 s) until `sender` has nothing pending.
    pub async fn settle(sender: &super::WebhookSender) {
        tokio::time::timeout(Duration::from_secs(10), sender.idle()).await.expect("the webhooks settle");
    }

    impl Receiver {
        /// Listens on `127.0.0.1:0`; answers 500 to the first `fail_first` requests, 200 after.
        pub async fn start(fail_first: usize) -> Self {
            let inner = Arc::new(Inner {
                received: Mutex::new(Vec::new()),
                fail_first: AtomicUsize::new(fail_first),
                delay: Mutex::new(Duration::ZERO),
            });
            let router = Router::new().fallback(record).with_state(inner.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("address"));
            tokio::spawn(async move { axum::serve(listener, router).await });
            Receiver { url, inner }
        }

        /// The base URL, `http://127.0.0.1:PORT`.
        pub fn url(&self) -> &str {
            &self.url
        }

        /// Answer every request only after `delay`.
        pub fn delay(&self, delay: Duration) {
            *self.inner.delay.lock().expect("delay lock") = delay;
        }

        pub fn received(&self) -> Vec<Received> {
            self.inner.received.lock().expect("received lock").clone()
        }

        /// Waits (polling, at most 5 s) until `n` requests have arrived; answers them.
        pub async fn wait_for(&self, n: usize) -> Vec<Received> {
            for _ in 0..500 {
                let received = self.received();
                if received.len() >= n {
                    return received;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{n} webhooks expected, {} arrived", self.received().len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::receiver::Receiver;
    use super::*;

    fn settings(retry_ms: &[u64]) -> SandboxWebhookSettings {
        SandboxWebhookSettings {
            retry_schedule: retry_ms.iter().copied().map(Duration::from_millis).collect(),
            ..SandboxWebhookSettings::default()
        }
    }

    /// An event whose signer counts its calls and signs with the call number.
    fn event(body: &str, calls: &Arc<AtomicU64>) -> WebhookEvent {
        let calls = calls.clone();
        WebhookEvent::new(body.as_bytes().to_vec(), move |_| {
            vec![("x-attempt", (calls.fetch_add(1, Ordering::SeqCst) + 1).to_string())]
        })
    }

    async fn idle(sender: &WebhookSender) {
        tokio::time::timeout(Duration::from_secs(10), sender.idle()).await.expect("the sender becomes idle");
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_on_the_schedule_and_signed_afresh() {
        let receiver = Receiver::start(2).await;
        let sender = WebhookSender::new("test", Duration::from_secs(5), settings(&[5, 5, 5]));
        sender.set_targets(vec![format!("{}/hook", receiver.url())]);
        let calls = Arc::new(AtomicU64::new(0));
        sender.send(event(r#"{"n":1}"#, &calls));
        idle(&sender).await;
        let received = receiver.received();
        assert_eq!(received.len(), 3);
        assert!(received.iter().all(|r| &r.body[..] == br#"{"n":1}"# && r.path == "/hook"));
        assert!(received.iter().all(|r| r.header("content-type") == "application/json"));
        assert_eq!(received.iter().map(|r| r.header("x-attempt")).collect::<Vec<_>>(), ["1", "2", "3"]);
        let counts = sender.counts();
        assert_eq!((counts.sent, counts.delivered, counts.failed_attempts, counts.given_up), (1, 1, 2, 0));
    }

    #[tokio::test]
    async fn a_delivery_failing_past_the_schedule_is_given_up() {
        let receiver = Receiver::start(usize::MAX).await;
        let sender = WebhookSender::new("test", Duration::from_secs(5), settings(&[1, 2]));
        sender.set_targets(vec![receiver.url().to_owned()]);
        sender.send(event("{}", &Arc::new(AtomicU64::new(0))));
        idle(&sender).await;
        assert_eq!(receiver.received().len(), 3, "the first attempt and one per entry of the schedule");
        let counts = sender.counts();
        assert_eq!((counts.delivered, counts.failed_attempts, counts.given_up), (0, 3, 1));
    }

    #[tokio::test]
    async fn a_receiver_slower_than_the_timeout_is_retried() {
        let receiver = Receiver::start(0).await;
        receiver.delay(Duration::from_millis(300));
        let sender = WebhookSender::new("test", Duration::from_millis(50), settings(&[1]));
        sender.set_targets(vec![receiver.url().to_owned()]);
        sender.send(event("{}", &Arc::new(AtomicU64::new(0))));
        idle(&sender).await;
        let counts = sender.counts();
        assert_eq!((counts.delivered, counts.failed_attempts, counts.given_up), (0, 2, 1));
    }

    #[tokio::test]
    async fn duplicate_delivers_every_event_twice_to_every_target() {
        let (a, b) = (Receiver::start(0).await, Receiver::start(0).await);
        let sender = WebhookSender::new(
            "test",
            Duration::from_secs(5),
            SandboxWebhookSettings { duplicate: true, ..settings(&[5]) },
        );
        sender.set_targets(vec![a.url().to_owned(), b.url().to_owned()]);
        sender.send(event(r#"{"once":true}"#, &Arc::new(AtomicU64::new(0))));
        idle(&sender).await;
        for receiver in [&a, &b] {
            let received = receiver.received();
            assert_eq!(received.len(), 2);
            assert!(received.iter().all(|r| &r.body[..] == br#"{"once":true}"#));
        }
        assert_eq!(sender.counts().delivered, 4);
    }

    #[tokio::test]
    async fn the_reorder_window_delivers_the_newer_event_first() {
        let receiver = Receiver::start(0).await;
        let sender = WebhookSender::new(
            "test",
            Duration::from_secs(5),
            // The three sends fall in one window, however loaded the machine is.
            SandboxWebhookSettings { reorder_window: Duration::from_millis(500), ..settings(&[5]) },
        );
        sender.set_targets(vec![receiver.url().to_owned()]);
        let calls = Arc::new(AtomicU64::new(0));
        sender.send(event("A", &calls));
        sender.send(event("B", &calls));
        sender.send(event("C", &calls));
        idle(&sender).await;
        let order: Vec<Bytes> = receiver.received().into_iter().map(|r| r.body).collect();
        assert_eq!(order, ["C", "B", "A"]);
        // A later event opens a window of its own.
        sender.send(event("D", &calls));
        idle(&sender).await;
        assert_eq!(receiver.received().len(), 4);
    }

    #[tokio::test]
    async fn without_targets_an_event_is_counted_undeliverable() {
        let sender = WebhookSender::new("test", Duration::from_secs(5), settings(&[5]));
        sender.send(event("{}", &Arc::new(AtomicU64::new(0))));
        idle(&sender).await;
        let counts = sender.counts();
        assert_eq!((counts.sent, counts.undeliverable, counts.delivered, counts.failed_attempts), (1, 1, 0, 0));
    }

    #[tokio::test]
    async fn idle_waits_for_a_retry_that_is_still_to_come() {
        let receiver = Receiver::start(1).await;
        let sender = WebhookSender::new("test", Duration::from_secs(5), settings(&[200]));
        sender.set_targets(vec![receiver.url().to_owned()]);
        sender.send(event("{}", &Arc::new(AtomicU64::new(0))));
        receiver.wait_for(1).await;
        idle(&sender).await;
        assert_eq!(receiver.received().len(), 2);
        assert_eq!(sender.counts().delivered, 1);
    }

    #[tokio::test]
    async fn the_admin_endpoint_sets_targets_and_refuses_what_is_not_a_url() {
        let sender = WebhookSender::new("test", Duration::from_secs(5), settings(&[5]));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/_sandbox/webhooks", listener.local_addr().expect("address"));
        let router = admin(sender.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::new();
        let put = |body: serde_json::Value| http.put(&url).json(&body).send();
        let ok = put(serde_json::json!({ "targets": ["http://127.0.0.1:9/webhooks/sila"] })).await.expect("answer");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(sender.targets(), ["http://127.0.0.1:9/webhooks/sila"]);
        let bad = put(serde_json::json!({ "targets": ["file:///etc/passwd"] })).await.expect("answer");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let unknown = put(serde_json::json!({ "target": [] })).await.expect("answer");
        assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
        let big = http.put(&url).body(vec![b' '; 20_000]).send().await.expect("answer");
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let shown: serde_json::Value = http.get(&url).send().await.expect("answer").json().await.expect("json");
        assert_eq!(shown["targets"][0], "http://127.0.0.1:9/webhooks/sila");
        assert_eq!(shown["counts"]["sent"], 0);
    }
}
