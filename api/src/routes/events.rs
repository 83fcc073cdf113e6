//! `POST /events` (and `/events/`, which existing clients use).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
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

/// The answer to an accepted event: its id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: Uuid,
}

/// Accept an event: 202 once the broker has confirmed it, never before.
#[utoipa::path(
    post,
    path = "/events",
    tag = "events",
    request_body = EventIn,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Confirmed by the broker; will be stored or dead-lettered", body = Accepted),
        (status = 400, description = "Not JSON, or not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid, expired or revoked token, or a disabled application; `reason` says which", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 413, description = "Body over the limit", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "A field is missing or wrong; `field` names it", body = crate::error::Body),
        (status = 429, description = "The application is over its rate limit; see Retry-After and RateLimit-*", body = crate::error::Body),
        (status = 503, description = "The broker is unavailable or slow, the publisher's queue is full, or the revocation state is stale; see Retry-After. Without `id` in the error the event was not stored; with it, it may have been: retry with that id", body = crate::error::Body),
    )
)]
pub(crate) async fn post_event(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    JsonBody(event): JsonBody<EventIn>,
) -> Result<(StatusCode, [(&'static str, HeaderValue); 2], Json<Accepted>), ApiError> {
    let (id, quota) = ingest::accept(&state, &caller, event, request_id).await?;
    // The same headers as a 429's, so a client can pace itself before it is refused.
    let headers = [
        ("ratelimit-limit", HeaderValue::from(quota.limit)),
        ("ratelimit-remaining", HeaderValue::from(quota.remaining)),
    ];
    Ok((StatusCode::ACCEPTED, headers, Json(Accepted { id })))
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
