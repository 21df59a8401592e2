//! The open WebSocket connections: how many each caller holds (a bound per caller), and how many are open at all (a
//! shutdown waits until they have closed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

#[derive(Debug)]
pub struct Connections {
    per_caller: Mutex<HashMap<String, usize>>,
    max_per_caller: usize,
    /// The number of open sockets, watched by shutdown.
    open: watch::Sender<usize>,
}

/// One open socket; closing it (dropping) counts it out.
pub struct Open {
    connections: Arc<Connections>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.connections.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One caller's authenticated connection; dropping it frees the caller's slot.
pub struct CallerSlot {
    connections: Arc<Connections>,
    caller: String,
}

impl Drop for CallerSlot {
    fn drop(&mut self) {
        let mut map = self.connections.per_caller.lock().expect("connections lock");
        if let Some(n) = map.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.caller);
            }
        }
    }
}

impl Connections {
    pub fn new(max_per_caller: usize) -> Arc<Self> {
        Arc::new(Connections { per_caller: Mutex::default(), max_per_caller, open: watch::Sender::new(0) })
    }

    /// Counts a socket in until the returned guard is dropped.
    pub fn open(self: &Arc<Self>) -> Open {
        self.open.send_modify(|n| *n += 1);
        Open { connections: self.clone() }
    }

    /// A slot for `caller`, unless it holds as many connections as it may.
    pub fn admit(self: &Arc<Self>, caller: &str) -> Option<CallerSlot> {
        let mut map = self.per_caller.lock().expect("connections lock");
        let n = map.entry(caller.to_owned()).or_default();
        if *n >= self.max_per_caller {
            return None;
        }
        *n += 1;
        Some(CallerSlot { connections: self.clone(), caller: caller.to_owned() })
    }

    /// Waits until every socket has closed.
    pub async fn closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}
