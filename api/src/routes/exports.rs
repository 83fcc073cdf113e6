//! Feed exports: `POST /exports` (202 with the export's id; an `eye-exporter` process runs
//! it) and `GET /exports/{id}` (state, files written, records, error). An `exports:write`
//! token exports its own application's events only (to S3); `admin` exports anything,
//! anywhere, including plans and local folders of the exporter's host.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use eye_exporter::{Destination, EventFilter, ExportError, ExportSpec, Run, Shape};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Caller, SCOPE_ADMIN, SCOPE_EXPORTS_WRITE};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::params::uuid_param;
use crate::state::AppState;
use crate::store::StoreError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/exports", post(create_export))
        .route("/exports/{id}", get(get_export))
}

/// What to export, and where.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportRequest {
    /// The feed's folder under the destination (letters, digits, `-`, `_`, `.`).
    #[schema(example = "clicks")]
    name: String,
    /// `events`, `plans` (the /search read model) or `rwg_entities` (plans as Reserve with
    /// Google entities).
    #[schema(value_type = String, example = "events")]
    shape: ShapeIn,
    /// Events exports only.
    #[serde(default)]
    filter: Option<FilterIn>,
    /// Records per file (default 100, at most 10000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    chunk_size: Option<u32>,
    /// `s3://bucket/prefix`, or (admin) a folder on the exporter's host.
    #[schema(example = "s3://feeds/eye")]
    destination: String,
    /// Base of the entities' `url` (rwg_entities).
    #[serde(default)]
    url_base: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShapeIn {
    Events,
    Plans,
    RwgEntities,
}

/// Filters of an events export (all optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilterIn {
    /// Only this application's (an `exports:write` token: its own, whatever is given).
    application: Option<String>,
    category: Option<String>,
    name: Option<String>,
    /// Event time at or after.
    from: Option<DateTime<Utc>>,
    /// Event time before.
    to: Option<DateTime<Utc>>,
}

/// An export run as `GET /exports/{id}` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExportOut {
    id: Uuid,
    name: String,
    /// `pending`, `running`, `succeeded` or `failed` (a failed one can be resumed).
    state: String,
    /// The generation's folder: records stored up to `snapshot_at` are exported.
    generation: String,
    snapshot_at: DateTime<Utc>,
    files_written: i32,
    records: i64,
    error: Option<String>,
    /// Key of the descriptor, once written.
    descriptor_key: Option<String>,
    attempts: i32,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<Run> for ExportOut {
    fn from(r: Run) -> Self {
        Self {
            id: r.id,
            name: r.name,
            state: r.state,
            generation: r.generation,
            snapshot_at: r.snapshot_at,
            files_written: r.files_written,
            records: r.records,
            error: r.error,
            descriptor_key: r.descriptor_key,
            attempts: r.attempts,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

pub(crate) fn export_error(e: ExportError) -> ApiError {
    match e {
        ExportError::Invalid { field, reason } => ApiError::InvalidField {
            field: field.to_owned(),
            message: reason,
        },
        ExportError::Database(db) => StoreError::from(db).into(),
        other => ApiError::Internal(other.into()),
    }
}

/// The spec `request` asks for, as `caller` may have it.
fn spec_for(caller: &Caller, request: ExportRequest) -> Result<ExportSpec, ApiError> {
    let destination = Destination::parse(&request.destination).map_err(export_error)?;
    let shape = match request.shape {
        ShapeIn::Events => Shape::Events,
        ShapeIn::Plans => Shape::Plans,
        ShapeIn::RwgEntities => Shape::RwgEntities,
    };
    let f = request.filter.unwrap_or_default();
    let mut filter = EventFilter {
        application: f.application,
        category: f.category,
        name: f.name,
        from: f.from,
        to: f.to,
    };
    if let Some(own) = caller.scope_app() {
        // Not an admin: its own events, to object storage.
        if shape != Shape::Events {
            return Err(ApiError::Forbidden(SCOPE_ADMIN));
        }
        if matches!(destination, Destination::Folder { .. }) {
            return Err(ApiError::Forbidden(SCOPE_ADMIN));
        }
        if filter.application.as_deref().is_some_and(|app| app != own) {
            return Err(ApiError::Forbidden(SCOPE_ADMIN));
        }
        filter.application = Some(own.to_owned());
    }
    let spec = ExportSpec {
        name: request.name,
        shape,
        filter,
        chunk_size: request
            .chunk_size
            .unwrap_or(eye_exporter::spec::DEFAULT_CHUNK_SIZE),
        destination,
        url_base: request.url_base,
    };
    spec.validate().map_err(export_error)?;
    Ok(spec)
}

/// Request an export: it is queued (`pending`) and run by an `eye-exporter` process.
#[utoipa::path(
    post,
    path = "/exports",
    tag = "exports",
    request_body = ExportRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued; follow it at /exports/{id}", body = ExportOut),
        (status = 400, description = "Not JSON, or not a JSON object", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `exports:write`, or asks for more than its own events (admin)", body = crate::error::Body),
        (status = 415, description = "Content-Type is not application/json", body = crate::error::Body),
        (status = 422, description = "A bad field; `field` names it", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn create_export(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ExportRequest>,
) -> Result<(StatusCode, Json<ExportOut>), ApiError> {
    caller.require(SCOPE_EXPORTS_WRITE)?;
    let spec = spec_for(&caller, request)?;
    let run = eye_exporter::runs::create(&state.reads, &spec, None)
        .await
        .map_err(export_error)?;
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// An export's state, files written, records and error.
#[utoipa::path(
    get,
    path = "/exports/{id}",
    tag = "exports",
    params(("id" = Uuid, Path, description = "The id the 202 answered")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export", body = ExportOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `exports:write`", body = crate::error::Body),
        (status = 404, description = "No such export for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn get_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ExportOut>, ApiError> {
    caller.require(SCOPE_EXPORTS_WRITE)?;
    let id = uuid_param("id", &id)?;
    let run = eye_exporter::runs::get(&state.reads, id)
        .await
        .map_err(StoreError::from)?
        .ok_or(ApiError::NotFound)?;
    if let Some(own) = caller.scope_app() {
        let mine = run.spec().ok().is_some_and(|s| {
            s.shape == Shape::Events && s.filter.application.as_deref() == Some(own)
        });
        if !mine {
            return Err(ApiError::NotFound);
        }
    }
    Ok(Json(run.into()))
}
