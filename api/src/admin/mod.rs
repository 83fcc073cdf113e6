//! The admin console at `/admin`: server-rendered pages (minijinja templates in
//! `templates/`), htmx for the few partial updates, every asset vendored in `assets/` and
//! served from here (no CDN, no build chain).
//!
//! A page is one file in `pages/` with its own `router()` (routes under `/admin/...`), its
//! template(s) in `templates/` (extending `layout.html`, listed in [`view`]'s `TEMPLATES`),
//! and one line in [`NAV`] if it belongs in the navigation. Handlers take a
//! [`session::Session`] (GET: refuses without a session) or a [`session::Posted`] (POST: a
//! session and a checked CSRF token), call the store or the registry, and render; failures
//! are [`view::AdminError`].

mod chart;
mod pages;
pub mod session;
pub mod view;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use crate::state::AppState;

/// A navigation entry: its path and title.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NavItem {
    pub key: &'static str,
    pub path: &'static str,
    pub title: &'static str,
}

/// The navigation, in order.
pub const NAV: &[NavItem] = &[
    NavItem {
        key: "overview",
        path: "/admin",
        title: "Overview",
    },
    NavItem {
        key: "events",
        path: "/admin/events",
        title: "Events",
    },
    NavItem {
        key: "dead_letters",
        path: "/admin/dead-letters",
        title: "Dead letters",
    },
    NavItem {
        key: "apps",
        path: "/admin/apps",
        title: "Applications & tokens",
    },
    NavItem {
        key: "plans",
        path: "/admin/plans",
        title: "Provider plans",
    },
    NavItem {
        key: "records",
        path: "/admin/records",
        title: "JSON records",
    },
    NavItem {
        key: "erasures",
        path: "/admin/erasures",
        title: "Erasures",
    },
    NavItem {
        key: "imports",
        path: "/admin/imports",
        title: "Imports",
    },
    NavItem {
        key: "webhooks",
        path: "/admin/webhooks",
        title: "Webhooks",
    },
    NavItem {
        key: "exports",
        path: "/admin/exports",
        title: "Exports",
    },
];

/// Every console route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/assets/htmx.min.js", get(htmx))
        .route("/admin/assets/htmx-ext-sse.min.js", get(htmx_sse))
        .route("/admin/assets/console.css", get(css))
        .route("/admin/assets/console.js", get(js))
        .merge(pages::router())
}

/// htmx 2.0.11 (0BSD), from the npm package `htmx.org`'s `dist/htmx.min.js`.
async fn htmx() -> impl IntoResponse {
    asset("text/javascript", include_str!("assets/htmx.min.js"))
}

/// htmx's SSE extension 2.2.4 (0BSD), from the npm package `htmx-ext-sse`'s
/// `dist/sse.min.js` (the import page's live progress).
async fn htmx_sse() -> impl IntoResponse {
    asset(
        "text/javascript",
        include_str!("assets/htmx-ext-sse.min.js"),
    )
}

async fn css() -> impl IntoResponse {
    asset("text/css", include_str!("assets/console.css"))
}

async fn js() -> impl IntoResponse {
    asset("text/javascript", include_str!("assets/console.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}
