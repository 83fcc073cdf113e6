//! `GET /events`, `GET /events/{id}`, `GET /sessions/{session_id}/events`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use uuid::Uuid;

use crate::auth::{Caller, SCOPE_EVENTS_READ};
use crate::error::ApiError;
use crate::query::Params;
use crate::reads::{self, EventFilter, EventOut, Page};
use crate::state::AppState;

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

async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Json<Page>, ApiError> {
    params.only(LIST_PARAMS)?;
    let filter = filter_for(&caller, &params, params.uuid("session_id")?)?;
    Ok(Json(reads::list(&state.db, &filter).await?))
}

async fn session_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(session_id): Path<String>,
    params: Params,
) -> Result<Json<Page>, ApiError> {
    params.only(SESSION_PARAMS)?;
    let session_id = session_id
        .parse::<Uuid>()
        .map_err(|_| ApiError::BadParameter {
            param: "session_id".into(),
            message: format!("not a UUID: {session_id:?}"),
        })?;
    let filter = filter_for(&caller, &params, Some(session_id))?;
    Ok(Json(reads::list(&state.db, &filter).await?))
}

async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventOut>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    let id = id.parse::<Uuid>().map_err(|_| ApiError::BadParameter {
        param: "id".into(),
        message: format!("not a UUID: {id:?}"),
    })?;
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
