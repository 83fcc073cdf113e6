//! Overview (`/admin`): events stored and refused per minute over the last hour (SVG drawn
//! server-side), the queue's depth (a passive declare), received-to-stored lag, estimated table sizes and the health of each
//! dependency, all from the database and this api's own state.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use super::page;
use crate::admin::chart;
use crate::admin::session::Session;
use crate::admin::view::{AdminError, render};
use crate::state::AppState;
use crate::store::console;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin", get(overview))
}

async fn overview(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, AdminError> {
    let minutes = console::per_minute(&state.reads, 60).await?;
    let lag = console::recent_lag(&state.reads).await?;
    let accepted_hour: i64 = minutes.iter().map(|m| m.accepted).sum();
    let stored_hour: i64 = minutes.iter().map(|m| m.stored).sum();
    let refused_hour: i64 = minutes.iter().map(|m| m.refused).sum();
    let events_estimate = console::estimated_rows(&state.reads, "events").await?;
    let dead_estimate = console::estimated_rows(&state.reads, "dead_letters").await?;
    let health = [
        (
            "PostgreSQL",
            state.probe.database_answers(Duration::from_secs(1)).await,
        ),
        ("RabbitMQ (publisher link)", state.publisher.is_ready()),
        ("Token revocation state", state.auth.is_fresh()),
    ];
    let depths = tokio::time::timeout(Duration::from_secs(1), state.publisher.queue_depths())
        .await
        .ok()
        .flatten();
    let ms = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"));
    render(
        "overview.html",
        page(
            &session,
            "overview",
            minijinja::context! {
                chart => minijinja::Value::from_safe_string(chart::per_minute(&minutes)),
                accepted_hour, stored_hour, refused_hour,
                last_minute => minutes.last().map(|m| (m.accepted, m.stored, m.refused)),
                lag_events => lag.events,
                lag_p50 => ms(lag.p50_ms), lag_p95 => ms(lag.p95_ms), lag_max => ms(lag.max_ms),
                events_estimate, dead_estimate,
                queue_depth => depths.map(|d| d.0), poison_depth => depths.map(|d| d.1),
                health => health.iter().map(|(n, up)| minijinja::context! { name => n, up => up }).collect::<Vec<_>>(),
            },
        ),
    )
}
