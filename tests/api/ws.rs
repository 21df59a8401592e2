//! A real WebSocket client for the subscription tests (tokio-tungstenite), speaking either protocol.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

/// How long a test waits for one message before failing.
const WAIT: Duration = Duration::from_secs(10);

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: &'static str,
}

/// What ended a connection, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

fn request(app: &TestApp, protocol: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    request_to(app.addr, protocol)
}

fn request_to(
    addr: std::net::SocketAddr,
    protocol: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{addr}/graphql/ws").into_client_request().expect("a ws URL");
    request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().expect("a header"));
    request
}

impl Ws {
    /// Opens a connection offering `protocol`.
    pub async fn connect(app: &TestApp, protocol: &'static str) -> Ws {
        Ws::connect_to(app.addr, protocol).await
    }

    /// Opens a connection to a gateway at `addr` (a process of its own) offering `protocol`.
    pub async fn connect_to(addr: std::net::SocketAddr, protocol: &'static str) -> Ws {
        let (stream, response) =
            tokio_tungstenite::connect_async(request_to(addr, protocol)).await.expect("the upgrade");
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        Ws { stream, protocol }
    }

    /// Opens a connection whose socket buffers only a few KB: a client that stops reading is noticed quickly.
    pub async fn connect_small(app: &TestApp, protocol: &'static str) -> Ws {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(4096).expect("a small buffer");
        let tcp = socket.connect(app.addr).await.expect("connects");
        let (stream, _) = tokio_tungstenite::client_async(request(app, protocol), MaybeTlsStream::Plain(tcp))
            .await
            .expect("the upgrade");
        Ws { stream, protocol }
    }

    pub async fn send(&mut self, message: Value) {
        self.stream.send(Message::Text(message.to_string().into())).await.expect("sent");
    }

    /// The next GraphQL message, answering the server's pings and skipping its keep-alives; `Err` with the close when
    /// the connection ends.
    pub async fn next(&mut self) -> Result<Value, Closed> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.stream.next()).await.expect("a message in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON");
                    match message["type"].as_str() {
                        Some("ping") => self.send(json!({ "type": "pong" })).await,
                        Some("ka") => {}
                        _ => return Ok(message),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) =
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                    return Err(Closed { code, reason });
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(Closed { code: 1006, reason: String::new() }),
            }
        }
    }

    /// The close, when the connection ends within `wait` with nothing else on the way; `None` while it stays open.
    pub async fn closed_within(&mut self, wait: Duration) -> Option<Closed> {
        let frame = tokio::time::timeout(wait, self.stream.next()).await.ok()?;
        match frame {
            Some(Ok(Message::Close(frame))) => Some(
                frame
                    .map(|f| Closed { code: u16::from(f.code), reason: f.reason.to_string() })
                    .unwrap_or(Closed { code: 1005, reason: String::new() }),
            ),
            Some(Ok(other)) => panic!("expected the connection to stay quiet or close, got {other:?}"),
            Some(Err(_)) | None => Some(Closed { code: 1006, reason: String::new() }),
        }
    }

    /// The next message, which must be one.
    pub async fn message(&mut self) -> Value {
        self.next().await.unwrap_or_else(|closed| panic!("the connection closed: {closed:?}"))
    }

    /// Waits for the connection to close, skipping what comes before; the close.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.next().await {
                return closed;
            }
        }
    }

    /// `connection_init` with this token; the server's answer.
    pub async fn init(&mut self, token: &str) -> Result<Value, Closed> {
        self.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        self.next().await
    }

    /// `connection_init`, which must be acknowledged.
    pub async fn ready(app: &TestApp, token: &str) -> Ws {
        let mut ws = Ws::connect(app, TRANSPORT_WS).await;
        let ack = ws.init(token).await.expect("acknowledged");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str) {
        let kind = if self.protocol == TRANSPORT_WS { "subscribe" } else { "start" };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query } })).await;
    }

    /// The payload of the next `next` (or legacy `data`) message of operation `id`.
    pub async fn event(&mut self, id: &str) -> Value {
        let message = self.message().await;
        let expected = if self.protocol == TRANSPORT_WS { "next" } else { "data" };
        assert_eq!((message["type"].as_str(), message["id"].as_str()), (Some(expected), Some(id)), "{message}");
        message["payload"].clone()
    }
}
