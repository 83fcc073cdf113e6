//! `GET /events`, `GET /events/{id}`, `GET /sessions/{session_id}/events`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use uuid::Uuid;

use crate::auth::{Caller, SCOPE_EVENTS_READ};
use crate::error::ApiError;
use crate::params::{Params, uuid_param};
use crate::state::AppState;
use crate::store::events::{self as reads, EventFilter, EventOut, Page};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/sessions/{session_id}/events", get(session_events))
}

const LIST_PARAMS: &[&str] = &[
    "session_id",
    "category",
    "name",
    "from",
    "to",
    "limit",
    "cursor",
];
const SESSION_PARAMS: &[&str] = &["category", "name", "from", "to", "limit", "cursor"];

/// Query parameters of the event lists (documentation; parsed by [`Params`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListQuery {
    /// Only this session's events.
    session_id: Option<Uuid>,
    /// Only this category.
    #[param(min_length = 1)]
    category: Option<String>,
    /// Only this event name.
    #[param(min_length = 1)]
    name: Option<String>,
    /// Events at or after this time (RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f]`).
    from: Option<String>,
    /// Events before this time.
    to: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Query parameters of a session's events (documentation).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SessionQuery {
    #[param(min_length = 1)]
    category: Option<String>,
    #[param(min_length = 1)]
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    cursor: Option<String>,
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
    params: Params,
) -> Result<Json<Page>, ApiError> {
    params.only(LIST_PARAMS)?;
    let filter = filter_for(&caller, &params, params.uuid("session_id")?)?;
    Ok(Json(reads::list(&state.db, &filter).await?))
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
    params: Params,
) -> Result<Json<Page>, ApiError> {
    params.only(SESSION_PARAMS)?;
    let session_id = uuid_param("session_id", &session_id)?;
    let filter = filter_for(&caller, &params, Some(session_id))?;
    Ok(Json(reads::list(&state.db, &filter).await?))
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
    reads::get(&state.db, caller.scope_app(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// The filter a caller may run: their own application unless they are an admin.
fn filter_for(
    caller: &Caller,
    params: &Params,
    session_id: Option<Uuid>,
) -> Result<EventFilter, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    Ok(EventFilter {
        app_id: caller.scope_app().map(str::to_owned),
        session_id,
        category: params.text("category")?,
        name: params.text("name")?,
        from: params.time("from")?,
        to: params.time("to")?,
        limit: params.limit()?,
        after: params.cursor()?,
    })
}
