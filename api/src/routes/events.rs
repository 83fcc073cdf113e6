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
