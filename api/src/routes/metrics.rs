//! `GET /metrics` (Prometheus text exposition), served on its own listener
//! (`EYE_METRICS_ADDR`, loopback by default), and the middleware that times every request.

use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use metrics::Histogram;
use metrics_exporter_prometheus::PrometheusHandle;

/// The metrics listener's routes: `GET /metrics` only.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(handle)
}

/// Prometheus metrics, text exposition format.
async fn render(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}

/// Records `eye_http_request_duration_seconds{route, method, status}` for every routed request.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A clone of the matched path is an Arc's: no allocation.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    HANDLES
        .get(route, method, response.status())
        .record(started.elapsed());
    response
}

const UNMATCHED: &str = "unmatched";

/// Standard methods by name; any other is "other", so that made-up methods cannot grow the
/// label set.
fn method_label(method: &Method) -> &'static str {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ]
    .into_iter()
    .zip(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    .find_map(|(m, label)| (m == method).then_some(label))
    .unwrap_or("other")
}

static HANDLES: LazyLock<Handles> = LazyLock::new(Handles::default);

/// Histogram handles by route template, then method and status, found without allocating
/// (the `histogram!` macro builds and hashes its label set on every call). Routes are the
/// router's templates, so the map stays as small as the router.
#[derive(Default)]
struct Handles(RwLock<HashMap<String, Vec<Handle>>>);

/// One label set's histogram: method, status, handle.
type Handle = (&'static str, StatusCode, Histogram);

impl Handles {
    fn get(&self, route: &str, method: &'static str, status: StatusCode) -> Histogram {
        let find = |entries: &Vec<Handle>| {
            entries
                .iter()
                .find(|(m, s, _)| *m == method && *s == status)
                .map(|(_, _, h)| h.clone())
        };
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = map.get(route).and_then(find) {
            return found;
        }
        drop(map);
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let entries = map.entry(route.to_owned()).or_default();
        if let Some(found) = find(entries) {
            return found;
        }
        let histogram = metrics::histogram!(
            "eye_http_request_duration_seconds",
            "route" => route.to_owned(),
            "method" => method,
            "status" => status.as_str().to_owned()
        );
        entries.push((method, status, histogram.clone()));
        histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        let made_up = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }

    #[test]
    fn one_label_set_is_one_handle() {
        let handles = Handles::default();
        let _ = handles.get("/events", "POST", StatusCode::ACCEPTED);
        let _ = handles.get("/events", "POST", StatusCode::ACCEPTED);
        let _ = handles.get("/events", "POST", StatusCode::BAD_REQUEST);
        let _ = handles.get("/healthz", "GET", StatusCode::OK);
        let map = handles.0.read().expect("not poisoned");
        assert_eq!(map.len(), 2);
        assert_eq!(map["/events"].len(), 2);
    }
}
