//! The HTTP routes, one file per resource, merged once here.

mod events;
mod health;
mod metrics;

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route, with JSON 404 and 405 answers.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(events::router())
        .merge(health::router())
        .merge(metrics::router())
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
