//! `POST /events` (and `/events/`, which existing clients use).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use eye_core::EventIn;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestId};
use crate::ingest;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", post(post_event))
        .route("/events/", post(post_event))
}

/// `POST /bench/noop`: the same request, authentication and checks as `POST /events`, and
/// the envelope serialized, but nothing published. Mounted only with
/// `EYE_BENCH_NOOP_ROUTE=true`, to measure the HTTP layer's ceiling (`make bench`).
pub fn bench_router() -> Router<AppState> {
    Router::new().route("/bench/noop", post(post_noop))
}

/// The answer to an accepted event.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub id: Uuid,
}

async fn post_event(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    JsonBody(event): JsonBody<EventIn>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let id = ingest::accept(&state, &caller, event, request_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id })))
}

async fn post_noop(
    caller: Caller,
    RequestId(request_id): RequestId,
    JsonBody(event): JsonBody<EventIn>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let envelope = ingest::stamp(&caller, event, request_id)?;
    std::hint::black_box(envelope.to_json());
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: envelope.event.id,
        }),
    ))
}
