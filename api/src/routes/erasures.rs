//! Erasures: `POST /erasures` (a dry run, pending), `POST /erasures/{id}/confirm`,
//! `GET /erasures/{id}` (progress and audit trail) and `GET /erasures` (the latest).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::{Caller, SCOPE_EVENTS_ERASE};
use crate::erasure::{self, ErasureList, ErasureRequest};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::params::uuid_param;
use crate::state::AppState;
use crate::store::erasures::ErasureOut;

/// Behind the reads' concurrency bound (they run on the read pool).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/erasures", post(request_erasure).get(list_erasures))
        .route("/erasures/{id}", get(get_erasure))
        .route("/erasures/{id}/confirm", post(confirm_erasure))
}

/// Who did it, for the audit trail: the application and the token's id.
fn actor(caller: &Caller) -> String {
    format!("app:{} token:{}", caller.app_id, caller.token_id)
}

/// Ask for an erasure: answers its dry run (how many events and dead letters match now);
/// nothing is deleted until `POST /erasures/{id}/confirm`.
#[utoipa::path(
    post,
    path = "/erasures",
    tag = "erasure",
    request_body = ErasureRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Recorded, pending confirmation, with its dry run", body = ErasureOut),
        (status = 400, description = "Not JSON, or not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:erase`, or names another application without `admin`", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "A bad field, or neither a session nor a time range; `field` names it", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the count timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn request_erasure(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ErasureRequest>,
) -> Result<(StatusCode, Json<ErasureOut>), ApiError> {
    caller.require(SCOPE_EVENTS_ERASE)?;
    let admin = caller.scope_app().is_none();
    let out = erasure::request(
        &state.reads,
        &request,
        &caller.app_id,
        admin,
        &actor(&caller),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// Confirm an erasure: its tombstone is written at once (late events of its session are
/// suppressed from then on) and a worker deletes the matching rows in the background.
/// Confirming again answers the erasure as it is.
#[utoipa::path(
    post,
    path = "/erasures/{id}/confirm",
    tag = "erasure",
    params(("id" = Uuid, Path, description = "The erasure's id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Confirmed; deletion runs in the background", body = ErasureOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:erase`", body = crate::error::Body),
        (status = 404, description = "No such erasure for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn confirm_erasure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ErasureOut>), ApiError> {
    caller.require(SCOPE_EVENTS_ERASE)?;
    let id = uuid_param("id", &id)?;
    let out = erasure::confirm(&state.reads, id, caller.scope_app(), &actor(&caller)).await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// An erasure: its filter, who asked and confirmed, the dry run, progress and what was
/// suppressed since.
#[utoipa::path(
    get,
    path = "/erasures/{id}",
    tag = "erasure",
    params(("id" = Uuid, Path, description = "The erasure's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The erasure", body = ErasureOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:erase`", body = crate::error::Body),
        (status = 404, description = "No such erasure for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn get_erasure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ErasureOut>, ApiError> {
    caller.require(SCOPE_EVENTS_ERASE)?;
    let id = uuid_param("id", &id)?;
    Ok(Json(
        erasure::get(&state.reads, id, caller.scope_app()).await?,
    ))
}

/// The latest 100 erasures, newest first (admins: every application's).
#[utoipa::path(
    get,
    path = "/erasures",
    tag = "erasure",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The latest erasures", body = ErasureList),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:erase`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_erasures(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ErasureList>, ApiError> {
    caller.require(SCOPE_EVENTS_ERASE)?;
    Ok(Json(erasure::list(&state.reads, caller.scope_app()).await?))
}
