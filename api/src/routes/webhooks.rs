//! Webhook subscriptions of the caller's application: CRUD under `/webhooks`, secret
//! rotation, attempts, deliveries, a synchronous test and a replay.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, SCOPE_WEBHOOKS_READ, SCOPE_WEBHOOKS_WRITE};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::params::{Query, default_limit, limit, time, uuid_param};
use crate::state::AppState;
use crate::store::webhooks::{self as store, AttemptOut, DeliveryOut, WebhookOut};
use crate::webhooks::{self, ReplayOut, RotateIn, TestOut, WebhookIn, WebhookList, WebhookPatch};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create_webhook).get(list_webhooks))
        .route(
            "/webhooks/{id}",
            get(get_webhook)
                .patch(update_webhook)
                .delete(delete_webhook),
        )
        .route("/webhooks/{id}/rotate", post(rotate_secret))
        .route("/webhooks/{id}/attempts", get(list_attempts))
        .route("/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/webhooks/{id}/test", post(test_webhook))
        .route("/webhooks/{id}/replay", post(replay_webhook))
}

/// A page of attempts, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AttemptList {
    data: Vec<AttemptOut>,
}

/// A page of deliveries, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryList {
    data: Vec<DeliveryOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LimitParams {
    /// 1 to 1000 (default 100).
    #[serde(default = "default_limit", deserialize_with = "limit")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryParams {
    /// `pending`, `succeeded`, `failed` or `skipped`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    status: Option<DeliveryStatus>,
    /// 1 to 1000 (default 100).
    #[serde(default = "default_limit", deserialize_with = "limit")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    limit: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Skipped,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReplayParams {
    /// Events stored at or after this time (the ingestion formats).
    #[serde(deserialize_with = "time")]
    #[param(value_type = String)]
    since: Option<DateTime<Utc>>,
}

/// Subscribe an endpoint: answers the subscription with its signing secret (`whsec_...`),
/// shown here and on rotation only.
#[utoipa::path(
    post, path = "/webhooks", tag = "webhooks", request_body = WebhookIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed", body = WebhookOut),
        (status = 400, description = "Not JSON, or not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:write`", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "A bad field; `field` names it", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<WebhookIn>,
) -> Result<(StatusCode, Json<WebhookOut>), ApiError> {
    caller.require(SCOPE_WEBHOOKS_WRITE)?;
    let out = webhooks::create(&state.reads, &caller.app_id, &request).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// The application's subscriptions (admins: every application's).
#[utoipa::path(
    get, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "The subscriptions", body = WebhookList),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:read`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_READ)?;
    let data = store::list(&state.reads, caller.scope_app()).await?;
    Ok(Json(WebhookList { data }))
}

/// One subscription, with why the dispatcher disabled it, if it did.
#[utoipa::path(
    get, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = WebhookOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:read`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookOut>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_READ)?;
    let id = uuid_param("id", &id)?;
    store::get(&state.reads, caller.scope_app(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Change a subscription (`enabled: true` re-enables one the dispatcher disabled).
#[utoipa::path(
    patch, path = "/webhooks/{id}", tag = "webhooks", request_body = WebhookPatch,
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Changed", body = WebhookOut),
        (status = 400, description = "`id` is not a UUID, or the body is not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:write`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "A bad field; `field` names it", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<WebhookPatch>,
) -> Result<Json<WebhookOut>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_WRITE)?;
    let id = uuid_param("id", &id)?;
    Ok(Json(
        webhooks::update(&state.reads, caller.scope_app(), id, &patch).await?,
    ))
}

/// Unsubscribe: the subscription, its pending deliveries and its attempts go.
#[utoipa::path(
    delete, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:write`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(SCOPE_WEBHOOKS_WRITE)?;
    let id = uuid_param("id", &id)?;
    if store::delete(&state.reads, caller.scope_app(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Rotate the signing secret: answers the new one; the old one is still signed with (a
/// second signature) for `grace_secs`.
#[utoipa::path(
    post, path = "/webhooks/{id}/rotate", tag = "webhooks", request_body = RotateIn,
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Rotated; `secret` is the new one", body = WebhookOut),
        (status = 400, description = "`id` is not a UUID, or the body is not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:write`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "`grace_secs` too long", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<RotateIn>,
) -> Result<Json<WebhookOut>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_WRITE)?;
    let id = uuid_param("id", &id)?;
    Ok(Json(
        webhooks::rotate(&state.reads, caller.scope_app(), id, &request).await?,
    ))
}

/// Every attempt (time, status, latency, the answer's start, error), newest first.
#[utoipa::path(
    get, path = "/webhooks/{id}/attempts", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id"), LimitParams),
    responses(
        (status = 200, description = "The attempts", body = AttemptList),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:read`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<LimitParams>,
) -> Result<Json<AttemptList>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_READ)?;
    let id = uuid_param("id", &id)?;
    webhooks::owned(&state.reads, caller.scope_app(), id).await?;
    let data = store::attempts(&state.reads, id, params.limit).await?;
    Ok(Json(AttemptList { data }))
}

/// Deliveries, newest first, by status (`?status=failed`: those given up on).
#[utoipa::path(
    get, path = "/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id"), DeliveryParams),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:read`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_READ)?;
    let id = uuid_param("id", &id)?;
    webhooks::owned(&state.reads, caller.scope_app(), id).await?;
    let status = params.status.map(DeliveryStatus::as_str);
    let data = store::deliveries(&state.reads, id, status, params.limit).await?;
    Ok(Json(DeliveryList { data }))
}

/// Send a `webhook.test` message now, signed like every delivery; answers what the
/// endpoint did (status, latency, the answer's start) or why it could not be reached.
#[utoipa::path(
    post, path = "/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Sent (or refused/unreachable: see `error`)", body = TestOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:write`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestOut>, ApiError> {
    caller.require(SCOPE_WEBHOOKS_WRITE)?;
    let id = uuid_param("id", &id)?;
    Ok(Json(
        webhooks::test(&state.reads, &state.webhook_sender, caller.scope_app(), id).await?,
    ))
}

/// Send again every stored event since `since` that the filters pass, with the same
/// `webhook-id`s (receivers deduplicate), at most 100,000 per call.
#[utoipa::path(
    post, path = "/webhooks/{id}/replay", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The subscription's id"), ReplayParams),
    responses(
        (status = 202, description = "Queued", body = ReplayOut),
        (status = 400, description = "A bad or missing parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `webhooks:write`", body = crate::error::Body),
        (status = 404, description = "No such subscription for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn replay_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<ReplayParams>,
) -> Result<(StatusCode, Json<ReplayOut>), ApiError> {
    caller.require(SCOPE_WEBHOOKS_WRITE)?;
    let id = uuid_param("id", &id)?;
    let since = params.since.ok_or_else(|| ApiError::BadParameter {
        param: "since".into(),
        message: "required".into(),
    })?;
    let out = webhooks::replay(&state.reads, caller.scope_app(), id, since).await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}
