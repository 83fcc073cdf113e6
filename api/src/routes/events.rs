//! Events: `POST /events` (and `/events/`, which existing clients use), and reading them:
//! `GET /events`, `GET /events/{id}`, `GET /events/{id}/status`,
//! `GET /sessions/{session_id}/events`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use eye_core::EventIn;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Caller, SCOPE_EVENTS_READ};
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestId};
use crate::ingest;
use crate::params::{self, Query, uuid_param};
use crate::state::AppState;
use crate::store::cursor::Cursor;
use crate::store::events::{self, EventFilter, EventOut, EventStatus, Page};

/// Sending events.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", post(post_event))
        .route("/events/", post(post_event))
}

/// Reading them (behind the reads' concurrency bound).
pub fn read_router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/events/{id}/status", get(event_status))
        .route("/sessions/{session_id}/events", get(session_events))
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

/// Query parameters of `GET /events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this session's events.
    #[serde(default, deserialize_with = "params::uuid")]
    session_id: Option<Uuid>,
    /// Only this category.
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    category: Option<String>,
    /// Only this event name.
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    name: Option<String>,
    /// Events at or after this time (RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f]`).
    #[serde(default, deserialize_with = "params::time")]
    #[param(value_type = Option<String>)]
    from: Option<DateTime<Utc>>,
    /// Events before this time.
    #[serde(default, deserialize_with = "params::time")]
    #[param(value_type = Option<String>)]
    to: Option<DateTime<Utc>>,
    /// Page size.
    #[serde(default = "params::default_limit", deserialize_with = "params::limit")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000, default = 100)]
    limit: u64,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "params::cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<Cursor>,
}

/// Query parameters of `GET /sessions/{session_id}/events`: those of `GET /events` but the
/// session.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SessionQuery {
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    category: Option<String>,
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    name: Option<String>,
    #[serde(default, deserialize_with = "params::time")]
    #[param(value_type = Option<String>)]
    from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "params::time")]
    #[param(value_type = Option<String>)]
    to: Option<DateTime<Utc>>,
    #[serde(default = "params::default_limit", deserialize_with = "params::limit")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000, default = 100)]
    limit: u64,
    #[serde(default, deserialize_with = "params::cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<Cursor>,
}

/// The caller's events, oldest first, a page at a time (admins: every application's).
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events", body = Page),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, ApiError>,
) -> Result<Json<Page>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    let Query(q) = query?;
    let filter = EventFilter {
        app_id: caller.scope_app().map(str::to_owned),
        session_id: q.session_id,
        category: q.category,
        name: q.name,
        from: q.from,
        to: q.to,
        limit: q.limit,
        after: q.cursor,
    };
    Ok(Json(
        events::list(&state.reads, &state.partitions, &filter).await?,
    ))
}

/// One session's events in the order they happened (by timestamp, not arrival).
#[utoipa::path(
    get,
    path = "/sessions/{session_id}/events",
    tag = "events",
    params(("session_id" = Uuid, Path, description = "The session"), SessionQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the session's events", body = Page),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn session_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    query: Result<Query<SessionQuery>, ApiError>,
) -> Result<Json<Page>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    let session_id = uuid_param("session_id", &session_id)?;
    let Query(q) = query?;
    let filter = EventFilter {
        app_id: caller.scope_app().map(str::to_owned),
        session_id: Some(session_id),
        category: q.category,
        name: q.name,
        from: q.from,
        to: q.to,
        limit: q.limit,
        after: q.cursor,
    };
    Ok(Json(
        events::list(&state.reads, &state.partitions, &filter).await?,
    ))
}

/// One of the caller's events.
#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "events",
    params(("id" = Uuid, Path, description = "The event id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event", body = EventOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 404, description = "No such event for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventOut>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    let id = uuid_param("id", &id)?;
    events::get(&state.reads, caller.scope_app(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// What became of an accepted event: `stored`, `rejected` (with the reasons) or `queued`.
#[utoipa::path(
    get,
    path = "/events/{id}/status",
    tag = "events",
    params(("id" = Uuid, Path, description = "The id the 202 answered")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event's status", body = EventStatus),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn event_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventStatus>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    let id = uuid_param("id", &id)?;
    Ok(Json(
        events::status(&state.reads, caller.scope_app(), id).await?,
    ))
}
