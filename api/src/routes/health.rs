//! `GET /healthz` (liveness, no I/O) and `GET /readyz` (dependencies, shutdown).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::state::AppState;

/// Longest a readiness probe waits on the database.
const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    status: &'static str,
}

/// Liveness: answers without touching any dependency.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A readiness report: one entry per dependency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    status: &'static str,
    broker: &'static str,
    database: &'static str,
    /// `fresh` when revoked tokens and disabled applications were reloaded recently
    /// enough to trust; `stale` means authenticated requests get 503.
    revocation: &'static str,
    shutting_down: bool,
}

/// Readiness: broker link up, database answering, revocation state fresh, not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready; the report says which dependency", body = Readiness)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let broker = state.publisher.is_ready();
    let database = state.probe.database_answers(DB_PROBE_TIMEOUT).await;
    let revocation = state.auth.is_fresh();
    let shutting_down = state.shutdown.is_cancelled();
    let ready = broker && database && revocation && !shutting_down;
    let up = |ok: bool| if ok { "up" } else { "down" };
    let report = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        broker: up(broker),
        database: up(database),
        revocation: if revocation { "fresh" } else { "stale" },
        shutting_down,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
