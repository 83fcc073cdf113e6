//! The OpenAPI document, generated from the handlers' annotations (`/openapi.json`), and
//! Swagger UI (`/docs`) from assets vendored in `api/assets/swagger-ui` (swagger-ui-dist
//! 5.35.0, Apache-2.0), so it works with no internet.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "The Eye", description = "Durable event collection: POST /events answers 202 only after the broker's confirm."),
    paths(
        super::events::post_event,
        super::batch::post_batch,
        super::events::list_events,
        super::events::get_event,
        super::events::session_events,
        super::dead_letters::list_errors,
        super::events::event_status,
        super::dead_letters::replay_errors,
        super::erasures::request_erasure,
        super::erasures::confirm_erasure,
        super::erasures::get_erasure,
        super::erasures::list_erasures,
        super::search::search,
        super::records::list_records,
        super::records::get_record,
        super::records::child_records,
        super::exports::create_export,
        super::exports::get_export,
        super::webhooks::create_webhook,
        super::webhooks::list_webhooks,
        super::webhooks::get_webhook,
        super::webhooks::update_webhook,
        super::webhooks::delete_webhook,
        super::webhooks::rotate_secret,
        super::webhooks::list_attempts,
        super::webhooks::list_deliveries,
        super::webhooks::test_webhook,
        super::webhooks::replay_webhook,
        super::imports::create_import,
        super::imports::list_imports,
        super::imports::get_import,
        super::imports::cancel_import,
        super::imports::refused_rows,
        super::imports::progress_events,
        super::health::healthz,
        super::health::readyz,
    ),
    components(schemas(crate::error::Body, crate::error::Detail, crate::batch::BatchAnswer, crate::batch::ItemResult)),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Sending and reading events"),
        (name = "erasure", description = "Erasing an application's events on request (scope `events:erase`)"),
        (name = "providers", description = "Events pulled from external providers, and a JSON provider's imported records"),
        (name = "exports", description = "Feeds of stored records to S3 or a folder (gzip JSON chunks and a descriptor)"),
        (name = "webhooks", description = "Signed webhooks (Standard Webhooks) of stored events to the application's endpoints (scopes `webhooks:read`, `webhooks:write`)"),
        (name = "imports", description = "Bulk imports of CSV or NDJSON files with live progress (scope `events:write`)"),
        (name = "health", description = "Liveness and readiness (metrics have their own listener, EYE_METRICS_ADDR)"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` (JWT) security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as served and as committed in `api/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/docs", get(|| async { Html(INDEX) }))
        .route(
            "/docs/swagger-ui.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JS) }),
        )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

const CSS: &str = include_str!("../../assets/swagger-ui/swagger-ui.css");
const JS: &str = include_str!("../../assets/swagger-ui/swagger-ui-bundle.js");
const INDEX: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>The Eye: API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });
  </script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document is the contract clients read: it must match the code.
    #[test]
    fn the_committed_openapi_document_matches_the_handlers() {
        let committed = include_str!("../../openapi.json");
        assert!(
            committed.trim_end() == openapi_json().trim_end(),
            "api/openapi.json is stale: run `make openapi` and commit it"
        );
    }
}
