//! The HTTP routes, one file per resource, merged once here.

pub mod docs;
mod errors;
mod events;
mod health;
mod metrics;
mod reads;
mod search;

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, with JSON 404 and 405 answers; `bench_noop` adds the benchmark-only route.
pub fn router(bench_noop: bool) -> Router<AppState> {
    let router = if bench_noop {
        events::bench_router()
    } else {
        Router::new()
    };
    router
        .merge(events::router())
        .merge(reads::router())
        .merge(errors::router())
        .merge(docs::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(search::router())
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
