//! `GET /metrics` (Prometheus text exposition) and the middleware that times every request.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Prometheus metrics, text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub(crate) async fn render(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}

/// Records `eye_http_requests_seconds{route, method, status}` for every routed request.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    metrics::histogram!(
        "eye_http_requests_seconds",
        "route" => route,
        "method" => method,
        "status" => response.status().as_str().to_owned()
    )
    .record(started.elapsed());
    response
}
