//! A request body with one deadline for the whole of it (`KYC_GATEWAY_BODY_TIMEOUT_MS`, else 408: [`answer_too_slow`]):
//! tower-http's `RequestBodyTimeout` restarts at every chunk, so a byte a second would hold a connection for ever.
//! While a body arrives, `serve.rs` may close its connection to make room, as it does for half-sent headers.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::time::Sleep;

use crate::graphql::errors::ErrorCode;

/// The body did not arrive within its deadline.
#[derive(Debug)]
pub struct TooSlow(pub Duration);

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the request body did not arrive within {} ms", self.0.as_millis())
    }
}

impl Error for TooSlow {}

/// A request's body deadline, in its extensions: whether it passed.
#[derive(Debug, Clone)]
pub struct BodyDeadline {
    timeout: Duration,
    expired: Arc<AtomicBool>,
}

impl BodyDeadline {
    pub fn new(timeout: Duration) -> Self {
        BodyDeadline { timeout, expired: Arc::default() }
    }
}

/// `inner` until its deadline; then an error, and the deadline is marked expired.
pub struct Arriving<B> {
    inner: B,
    deadline: BodyDeadline,
    timer: Pin<Box<Sleep>>,
    /// Held while the body is arriving (a guard of the connection's): dropped at its end, at its error, or with the
    /// request.
    receiving: Option<Box<dyn Any + Send>>,
}

impl<B: Body> Arriving<B> {
    /// `receiving` is dropped once the body is complete (at once for a body that is empty from the start).
    pub fn new(inner: B, deadline: BodyDeadline, receiving: Box<dyn Any + Send>) -> Self {
        let receiving = (!inner.is_end_stream()).then_some(receiving);
        let timer = Box::pin(tokio::time::sleep(deadline.timeout));
        Arriving { inner, deadline, timer, receiving }
    }
}

/// Middleware: a request whose body missed its deadline is answered 408 and its connection closed (the rest of the
/// body may still be coming), whatever its handler answered (axum's extractors make a body error a 400).
pub async fn answer_too_slow(request: Request, next: Next) -> Response {
    let deadline = request.extensions().get::<BodyDeadline>().cloned();
    let response = next.run(request).await;
    match deadline {
        Some(deadline) if deadline.expired.load(Ordering::Relaxed) => {
            let message = TooSlow(deadline.timeout).to_string();
            let body = super::error_body(&message, ErrorCode::BadRequest);
            (StatusCode::REQUEST_TIMEOUT, [(header::CONNECTION, "close")], body).into_response()
        }
        _ => response,
    }
}

impl<B> Body for Arriving<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.receiving.is_some() && this.timer.as_mut().poll(cx).is_ready() {
            this.receiving = None;
            this.deadline.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(TooSlow(this.deadline.timeout)))));
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.receiving = None,
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.receiving = None,
            _ => {}
        }
        frame.map(|frame| frame.map(|result| result.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
