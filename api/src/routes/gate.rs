//! Bounds on how many requests of a group of routes run at once. Past its bound a request
//! is answered 503 with `Retry-After` straight away instead of waiting for a database
//! connection until its timeout: a flood of reads or searches costs the flooders, and never
//! reaches ingestion, whose database needs have a pool of their own.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
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

/// Runs the request if a permit is free (held until its response is built), else answers
/// busy at once.
async fn admit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let Ok(_permit) = gate.permits.try_acquire() else {
        metrics::counter!("eye_http_shed_total", "group" => gate.group).increment(1);
        let mut response = (gate.busy)();
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(1u32));
        return response;
    };
    next.run(request).await
}
