//! `GET /errors` and `GET /events/{id}/status`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use eye_core::entity::dead_letter;

use crate::auth::{Caller, SCOPE_ADMIN, SCOPE_EVENTS_READ};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::params::{Params, uuid_param};
use crate::replay::{self, ReplayReport, ReplayRequest};
use crate::state::AppState;
use crate::store::dead_letters::{self as errors_read, ErrorFilter, ErrorPage, EventStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/errors", get(list_errors))
        .route("/events/{id}/status", get(event_status))
        .route("/errors/replay", axum::routing::post(replay_errors))
}

const PARAMS: &[&str] = &[
    "kind",
    "validator",
    "category",
    "name",
    "from",
    "to",
    "limit",
    "cursor",
];

/// Query parameters of `GET /errors` (documentation; parsed by [`Params`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ErrorQuery {
    /// Documented by [`kind_schema`].
    #[param(schema_with = kind_schema)]
    kind: Option<String>,
    /// Only refusals whose first reason came from this rule (e.g. `required_keys`).
    #[param(min_length = 1)]
    validator: Option<String>,
    #[param(min_length = 1)]
    category: Option<String>,
    #[param(min_length = 1)]
    name: Option<String>,
    /// First seen at or after this time.
    from: Option<String>,
    /// First seen before this time.
    to: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Refused and poisoned events (and, for admins, undecodable messages), oldest first, with
/// every reason.
#[utoipa::path(
    get,
    path = "/errors",
    tag = "events",
    params(ErrorQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of dead letters", body = ErrorPage),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_errors(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Json<ErrorPage>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    params.only(PARAMS)?;
    let filter = ErrorFilter {
        app_id: caller.scope_app().map(str::to_owned),
        kind: kind_param(&params)?,
        validator: params.text("validator")?,
        category: params.text("category")?,
        name: params.text("name")?,
        from: params.time("from")?,
        to: params.time("to")?,
        limit: params.limit()?,
        after: params.cursor()?,
    };
    Ok(Json(errors_read::list(&state.db, &filter).await?))
}

/// The `kind` parameter's schema: one of [`dead_letter::KINDS`].
fn kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "Only dead letters of this kind: `invalid`, `warning`, `undecodable` or \
             `poisoned` (past the broker's delivery limit, replayable).",
        ))
        .enum_values(Some(dead_letter::KINDS.iter().copied()))
        .build()
}

/// `kind`, refused (400) unless it is one of [`dead_letter::KINDS`].
fn kind_param(params: &Params) -> Result<Option<String>, ApiError> {
    let kind = params.text("kind")?;
    match kind {
        Some(k) if !dead_letter::KINDS.contains(&k.as_str()) => Err(ApiError::BadParameter {
            param: "kind".into(),
            message: format!(
                "unknown kind {k:?}; known: {}",
                dead_letter::KINDS.join(", ")
            ),
        }),
        kind => Ok(kind),
    }
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
        errors_read::status(&state.db, caller.scope_app(), id).await?,
    ))
}

/// Re-submit refused events (admin): by event id, by the rule that refused them, or by
/// application, with their original ids, so each is stored once whatever happens.
#[utoipa::path(
    post,
    path = "/errors/replay",
    tag = "events",
    request_body = ReplayRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Re-published and confirmed", body = ReplayReport),
        (status = 400, description = "Not JSON, or not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `admin`", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "No selection, or a bad field", body = crate::error::Body),
        (status = 503, description = "The broker or the database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn replay_errors(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ReplayRequest>,
) -> Result<Json<ReplayReport>, ApiError> {
    caller.require(SCOPE_ADMIN)?;
    Ok(Json(
        replay::replay(
            &state.db,
            &state.publisher,
            &request,
            state.retry_after_secs,
        )
        .await?,
    ))
}
