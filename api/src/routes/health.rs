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

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A readiness report: one entry per dependency.
#[derive(Debug, Serialize)]
struct Readiness {
    status: &'static str,
    broker: &'static str,
    database: &'static str,
    shutting_down: bool,
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let broker = state.publisher.is_ready();
    let database = matches!(
        tokio::time::timeout(DB_PROBE_TIMEOUT, state.db.ping()).await,
        Ok(Ok(()))
    );
    let shutting_down = state.shutdown.is_cancelled();
    let ready = broker && database && !shutting_down;
    let up = |ok: bool| if ok { "up" } else { "down" };
    let report = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        broker: up(broker),
        database: up(database),
        shutting_down,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
