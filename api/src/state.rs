//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::auth::Jwt;
use crate::extract::BodyLimit;
use crate::publisher::Publisher;

/// Shared, cheaply cloned application state.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub jwt: Arc<Jwt>,
    pub publisher: Publisher,
    pub body_limit: BodyLimit,
    /// `Retry-After` seconds for 503 answers.
    pub retry_after_secs: u32,
    /// Used by the readiness check only: the api never writes events itself.
    pub db: DatabaseConnection,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Cancelled when shutdown begins, so readiness turns 503 first.
    pub shutdown: CancellationToken,
}
