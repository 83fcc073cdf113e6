//! Dead letters: `GET /errors` (why events were refused) and `POST /errors/replay`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use eye_core::entity::dead_letter;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::auth::{Caller, SCOPE_ADMIN, SCOPE_EVENTS_READ};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::params::{self, Query};
use crate::replay::{self, ReplayReport, ReplayRequest};
use crate::state::AppState;
use crate::store::cursor::Cursor;
use crate::store::dead_letters::{self, DeadLetterFilter, ErrorPage};

/// Behind the reads' concurrency bound.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/errors", get(list_errors))
        .route("/errors/replay", post(replay_errors))
}

/// Query parameters of `GET /errors`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ErrorQuery {
    /// Documented by [`kind_schema`].
    #[serde(default, deserialize_with = "kind")]
    #[param(schema_with = kind_schema)]
    kind: Option<String>,
    /// Only refusals whose first reason came from this rule (e.g. `required_keys`).
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    validator: Option<String>,
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    category: Option<String>,
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    name: Option<String>,
    /// First seen at or after this time.
    #[serde(default, deserialize_with = "params::time")]
    #[param(value_type = Option<String>)]
    from: Option<DateTime<Utc>>,
    /// First seen before this time.
    #[serde(default, deserialize_with = "params::time")]
    #[param(value_type = Option<String>)]
    to: Option<DateTime<Utc>>,
    #[serde(default = "params::default_limit", deserialize_with = "params::limit")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000, default = 100)]
    limit: u64,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "params::cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<Cursor>,
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
    query: Result<Query<ErrorQuery>, ApiError>,
) -> Result<Json<ErrorPage>, ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    let Query(q) = query?;
    let filter = DeadLetterFilter {
        app_id: caller.scope_app().map(str::to_owned),
        kind: q.kind,
        validator: q.validator,
        category: q.category,
        name: q.name,
        from: q.from,
        to: q.to,
        limit: q.limit,
        after: q.cursor,
    };
    Ok(Json(dead_letters::list(&state.reads, &filter).await?))
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

/// `kind`: one of [`dead_letter::KINDS`].
fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let kind = params::text(d)?;
    match kind {
        Some(k) if !dead_letter::KINDS.contains(&k.as_str()) => Err(D::Error::custom(format!(
            "unknown kind {k:?}; known: {}",
            dead_letter::KINDS.join(", ")
        ))),
        kind => Ok(kind),
    }
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
            &state.reads,
            &state.publisher,
            &request,
            state.retry_after_secs,
        )
        .await?,
    ))
}
