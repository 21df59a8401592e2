//! Counting what callers hold open: WebSocket connections and requests in flight, each bounded per caller (the
//! token's subject), and the open WebSocket connections overall (a shutdown waits until they have closed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::auth::Principal;

/// The key a caller is counted under: its issuer, kind and subject.
pub fn caller_key(principal: &Principal) -> String {
    principal.key()
}

/// Slots per caller, at most `max` each.
#[derive(Debug)]
pub struct PerCaller {
    max: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One caller's slot; dropping it frees it.
pub struct CallerSlot {
    slots: Arc<PerCaller>,
    caller: String,
}

impl Drop for CallerSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().expect("caller slots lock");
        if let Some(n) = held.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

impl PerCaller {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerCaller { max, held: Mutex::default() })
    }

    /// The most slots a caller may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `caller`, unless it holds `max` already.
    pub fn admit(self: &Arc<Self>, caller: &str) -> Option<CallerSlot> {
        let mut held = self.held.lock().expect("caller slots lock");
        let n = held.entry(caller.to_owned()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(CallerSlot { slots: self.clone(), caller: caller.to_owned() })
    }
}

/// The open WebSocket connections.
#[derive(Debug)]
pub struct Connections {
    pub per_caller: Arc<PerCaller>,
    /// Open sockets at most, authenticated or not.
    max: usize,
    /// The number of open sockets, watched by shutdown.
    open: watch::Sender<usize>,
}

/// One open socket; closing it (dropping) counts it out.
pub struct Open {
    connections: Arc<Connections>,
    _gauged: crate::telemetry::metrics::Gauged,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.connections.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Connections {
    pub fn new(max_per_caller: usize, max: usize) -> Arc<Self> {
        Arc::new(Connections { per_caller: PerCaller::new(max_per_caller), max, open: watch::Sender::new(0) })
    }

    /// Counts a socket in until the returned guard is dropped; `None` when `max` are open.
    pub fn open(self: &Arc<Self>) -> Option<Open> {
        let mut admitted = false;
        self.open.send_if_modified(|n| {
            admitted = *n < self.max;
            if admitted {
                *n += 1;
            }
            admitted
        });
        admitted.then(|| Open {
            connections: self.clone(),
            _gauged: crate::telemetry::metrics::Gauged::new(crate::telemetry::metrics::WS_CONNECTIONS),
        })
    }

    /// Waits until every socket has closed.
    pub async fn closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}
