//! `POST /events/batch`: many events in one request, one answer per event.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::post;
use axum::{Json, Router};

use crate::auth::Caller;
use crate::batch::body::BatchBody;
use crate::batch::{self, BatchAnswer};
use crate::error::ApiError;
use crate::extract::RequestId;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/events/batch", post(post_batch))
}

/// Accept a batch of events (a JSON array, or NDJSON), optionally gzip- or zstd-compressed. Each
/// event is judged on its own, as by `POST /events`: the answer lists every event in input
/// order, `accepted` with its id or `refused` with the code, the field (a JSON pointer) and
/// the reason. It comes only once the broker confirmed every accepted event. A batch of N
/// valid events costs N of the application's rate limit.
#[utoipa::path(
    post,
    path = "/events/batch",
    tag = "events",
    request_body(
        description = "A JSON array of events (`application/json`) or one event per line (`application/x-ndjson`); `Content-Encoding: gzip` or `zstd` accepted (the limits hold for the decompressed body, and one that inflates more than EYE_BATCH_MAX_RATIO (100) times its size is refused 413). Each item should be an `EventIn` (the body of `POST /events`); the schema admits any item because each is judged on its own: one that is not a valid event is refused in the answer while its neighbours are accepted. At most EYE_BATCH_MAX_EVENTS events (1,000) and EYE_BATCH_MAX_BYTES decompressed (5 MiB); each event at most EYE_MAX_BODY_BYTES.",
        content(
            (Vec<serde_json::Value> = "application/json"),
            (String = "application/x-ndjson"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every event judged; the accepted ones confirmed by the broker (they will be stored or dead-lettered)", body = BatchAnswer),
        (status = 400, description = "Not a JSON array, NDJSON that holds no event, or a corrupt gzip or zstd body", body = crate::error::Body),
        (status = 401, description = "No, invalid, expired or revoked token, or a disabled application; `reason` says which", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 413, description = "Over a batch limit: bytes (decompressed), events, the compression ratio (a decompression bomb), or more valid events than the application's burst", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json or application/x-ndjson, or Content-Encoding not gzip or zstd", body = crate::error::Body),
        (status = 429, description = "The application's rate limit cannot take the batch's valid events now; see Retry-After", body = crate::error::Body),
        (status = 503, description = "The broker is unavailable or slow, or the revocation state is stale; nothing of the batch is answered accepted. Without `ids` in the error nothing was stored; with it, some events may have been: retry the batch with those ids (storage keeps one row per id)", body = crate::error::Body),
    )
)]
pub(crate) async fn post_batch(
    State(state): State<AppState>,
    caller: Caller,
    RequestId(request_id): RequestId,
    body: BatchBody,
) -> Result<(StatusCode, HeaderMap, Json<BatchAnswer>), ApiError> {
    let (answer, quota) = batch::accept(&state, &caller, &body, request_id).await?;
    let mut headers = HeaderMap::new();
    if let Some(quota) = quota {
        headers.insert("ratelimit-limit", HeaderValue::from(quota.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(quota.remaining));
    }
    Ok((StatusCode::OK, headers, Json(answer)))
}
