//! The HTTP routes, one file per resource, merged once here.

mod batch;
mod dead_letters;
pub mod docs;
mod erasures;
mod events;
pub(crate) mod exports;
mod gate;
mod health;
pub mod imports;
pub mod metrics;
mod records;
mod search;
mod webhooks;

use axum::Router;
use axum::response::IntoResponse;

use crate::error::{ApiError, SearchError};
use crate::state::AppState;
use gate::Gate;

/// How many reads and searches may run at once (see [`crate::ApiSettings`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub reads: u32,
    pub search: u32,
}

/// `POST /imports`: merged by `startup` outside the request timeout (an upload takes as long
/// as the file), with the same request metrics.
pub fn upload_router() -> Router<AppState> {
    imports::upload_router().route_layer(axum::middleware::from_fn(metrics::track))
}

/// Every route, with JSON 404 and 405 answers; `bench_noop` adds the benchmark-only route.
/// Reads and `/search` are each behind a concurrency bound (`limits`). `/metrics` is not
/// here: it has its own listener ([`metrics::router`]).
pub fn router(bench_noop: bool, limits: Limits) -> Router<AppState> {
    let reads = Gate::new("reads", limits.reads, || ApiError::Busy.into_response()).guard(
        events::read_router()
            .merge(dead_letters::router())
            .merge(erasures::router())
            .merge(records::router())
            .merge(webhooks::router()),
    );
    let search = Gate::new("search", limits.search, || {
        SearchError::Unavailable.into_response()
    })
    .guard(search::router());
    let router = if bench_noop {
        events::bench_router()
    } else {
        Router::new()
    };
    router
        .merge(events::router())
        .merge(batch::router())
        .merge(reads)
        .merge(exports::router())
        .merge(imports::router())
        .merge(docs::router())
        .merge(health::router())
        .merge(search)
        .merge(crate::admin::router())
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
