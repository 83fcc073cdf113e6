//! Bounds on how many requests of a group of routes run at once. Past its bound a request
//! is answered 503 with `Retry-After` straight away instead of waiting for a database
//! connection until its timeout: a flood of reads or searches costs the flooders, and never
//! reaches ingestion, whose database needs have a pool of their own.
//!
//! A response built whole releases its permit when built; a streamed one (no exact length,
//! e.g. a long `/search` answer read page by page) keeps it until its body ends or the client
//! goes, since it still queries the database while it is sent.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use tokio::sync::Semaphore;

/// One group's bound, and the answer it gives when full.
#[derive(Clone)]
pub struct Gate {
    /// The `group` label of `eye_http_shed_total`.
    group: &'static str,
    permits: Arc<Semaphore>,
    busy: fn() -> Response,
}

impl Gate {
    /// At most `permits` requests at once; `busy` answers the others (a `Retry-After: 1`
    /// is added if it has none).
    pub fn new(group: &'static str, permits: u32, busy: fn() -> Response) -> Self {
        Self {
            group,
            permits: Arc::new(Semaphore::new(permits as usize)),
            busy,
        }
    }

    /// `router`'s routes, behind this gate.
    pub fn guard<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.route_layer(axum::middleware::from_fn_with_state(self, admit))
    }
}

/// Runs the request if a permit is free (held until its response is built, or until a
/// streamed body ends), else answers busy at once.
async fn admit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let Ok(permit) = gate.permits.clone().try_acquire_owned() else {
        metrics::counter!("eye_http_shed_total", "group" => gate.group).increment(1);
        let mut response = (gate.busy)();
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(1u32));
        return response;
    };
    let response = next.run(request).await;
    if response.body().size_hint().exact().is_some() {
        return response;
    }
    response.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &permit;
            chunk
        }))
    })
}
