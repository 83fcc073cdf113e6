//! Bulk imports: `POST /imports` (the file as the body, streamed into staging; 202 with the
//! import), `GET /imports` (the application's newest), `GET /imports/{id}`, `DELETE
//! /imports/{id}` (cancel), `GET /imports/{id}/refused` (CSV, streamed) and
//! `GET /imports/{id}/events` (Server-Sent Events). Progress is read from PostgreSQL, so any
//! replica serves any import.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eye_core::import::Format;
use futures::{Stream, StreamExt, TryStreamExt};
use sea_orm::DatabaseConnection;
use tokio_util::io::{StreamReader, SyncIoBridge};
use uuid::Uuid;

use crate::auth::{Caller, SCOPE_EVENTS_WRITE};
use crate::error::ApiError;
use crate::imports::{ImportParams, stage_detached};
use crate::params::{Query, uuid_param};
use crate::state::AppState;
use crate::store::imports::{self, ImportOut};

/// How often a progress stream reads the import's row.
const SSE_POLL: Duration = Duration::from_millis(200);
/// A progress event is sent at least this often while the import is open, changed or not
/// (the contract says 500 ms; the margin is the database read).
const SSE_HEARTBEAT: Duration = Duration::from_millis(400);
/// Refused rows read per query while streaming them.
const REFUSED_PAGE: u64 = 1000;

/// `POST /imports`: outside the request timeout (an upload of a large file takes longer), its
/// body streamed rather than buffered.
pub fn upload_router() -> Router<AppState> {
    Router::new().route("/imports", post(create_import))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/imports", get(list_imports))
        .route("/imports/{id}", get(get_import).delete(cancel_import))
        .route("/imports/{id}/refused", get(refused_rows))
        .route("/imports/{id}/events", get(progress_events))
}

/// The application an import is for: the caller's own; an admin names it with `app`.
fn target_app(caller: &Caller, params: &ImportParams) -> String {
    match (caller.scope_app(), &params.app) {
        (None, Some(app)) => app.clone(),
        _ => caller.app_id.clone(),
    }
}

fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "text/csv" => Ok(Format::Csv),
        "application/x-ndjson" => Ok(Format::Ndjson),
        _ => Err(ApiError::Unsupported(
            "Content-Type must be text/csv or application/x-ndjson".into(),
        )),
    }
}

/// Upload a CSV or NDJSON file to import. The body is streamed into staging (never held
/// whole); the answer comes once every row is staged, before any is imported: a worker takes
/// it from there. Follow it with `GET /imports/{id}/events`. An upload over
/// `EYE_IMPORT_MAX_BYTES` (1 GiB) is refused 413; one that breaks off (the client went away)
/// fails the import: in both cases nothing of it is staged or imported.
#[utoipa::path(
    post,
    path = "/imports",
    tag = "imports",
    params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "A CSV file with a header line, or NDJSON (`application/x-ndjson`) events"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Staged and queued", body = ImportOut),
        (status = 400, description = "A bad query parameter", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 413, description = "The upload is over EYE_IMPORT_MAX_BYTES (1 GiB by default); nothing of it is kept", body = crate::error::Body),
        (status = 415, description = "Content-Type is not text/csv or application/x-ndjson", body = crate::error::Body),
        (status = 422, description = "A mapped or key column is not in the header, or the file is unreadable; `field` names it", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn create_import(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<ImportParams>, ApiError>,
    body: Body,
) -> Result<(StatusCode, Json<ImportOut>), ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let Query(params) = query?;
    let format = format_of(&headers)?;
    let limit = state.import_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::UploadTooLarge { limit });
    }
    let app = target_app(&caller, &params);
    let reader = SyncIoBridge::new(StreamReader::new(
        body.into_data_stream().map_err(std::io::Error::other),
    ));
    let by = format!("app:{} token:{}", caller.app_id, caller.token_id);
    let spec = params.spec(format);
    let staged = stage_detached(state.reads.clone(), app, by, spec, reader, limit).await?;
    let out = imports::get(&state.reads, staged.id, None)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

async fn owned(db: &DatabaseConnection, caller: &Caller, id: &str) -> Result<ImportOut, ApiError> {
    let id = uuid_param("id", id)?;
    imports::get(db, id, caller.scope_app())
        .await?
        .ok_or(ApiError::NotFound)
}

/// The application's newest imports (100).
#[utoipa::path(
    get,
    path = "/imports",
    tag = "imports",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first", body = [ImportOut]),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn list_imports(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ImportOut>>, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    Ok(Json(
        imports::list(&state.reads, caller.scope_app(), 100).await?,
    ))
}

/// One import: state and counters.
#[utoipa::path(
    get,
    path = "/imports/{id}",
    tag = "imports",
    params(("id" = Uuid, Path, description = "The import's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The import", body = ImportOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 404, description = "No such import for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn get_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ImportOut>, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    Ok(Json(owned(&state.reads, &caller, &id).await?))
}

/// Cancel an import: rows already committed stay, no more are read. A finished import is
/// answered as it is.
#[utoipa::path(
    delete,
    path = "/imports/{id}",
    tag = "imports",
    params(("id" = Uuid, Path, description = "The import's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled (or already finished)", body = ImportOut),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 404, description = "No such import for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn cancel_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ImportOut>, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let id = uuid_param("id", &id)?;
    imports::cancel(&state.reads, id, caller.scope_app())
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// The refused rows as CSV (`row,column,message,record`), in file order, streamed.
#[utoipa::path(
    get,
    path = "/imports/{id}/refused",
    tag = "imports",
    params(("id" = Uuid, Path, description = "The import's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "CSV: row number, column, message, the record as read", content_type = "text/csv", body = String),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 404, description = "No such import for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn refused_rows(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let import = owned(&state.reads, &caller, &id).await?;
    let csv = import.format.as_deref() == Some("csv");
    let db = state.reads.clone();
    let header = futures::stream::once(async {
        Ok::<_, std::io::Error>(b"row,column,message,record\n".to_vec())
    });
    let pages = futures::stream::try_unfold(Some(0i64), move |after| {
        let db = db.clone();
        async move {
            let Some(after) = after else { return Ok(None) };
            let rows = imports::refused(&db, import.id, after, REFUSED_PAGE)
                .await
                .map_err(std::io::Error::other)?;
            let next = (rows.len() as u64 == REFUSED_PAGE)
                .then(|| rows.last().map_or(after, |r| r.row_no));
            Ok(Some((refused_csv(&rows, csv), next)))
        }
    });
    let body = Body::from_stream(header.chain(pages));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

/// Refused rows as CSV lines; a CSV record is written back as the CSV line it was.
fn refused_csv(rows: &[imports::RefusedRow], csv: bool) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    for row in rows {
        let record = if csv {
            let fields: Vec<String> = serde_json::from_str(&row.line).unwrap_or_default();
            let mut line = csv::Writer::from_writer(Vec::new());
            let _ = line.write_record(&fields);
            let bytes = line.into_inner().unwrap_or_default();
            String::from_utf8_lossy(&bytes).trim_end().to_owned()
        } else {
            row.line.clone()
        };
        let _ = out.write_record([
            row.row_no.to_string().as_str(),
            &row.column,
            &row.message,
            &record,
        ]);
    }
    out.into_inner().unwrap_or_default()
}

/// Live progress as Server-Sent Events: a `progress` event (the import as `GET /imports/{id}`
/// shows it, `id` = its `version`) whenever it changes and at least every 400 ms while it is
/// open, then one `end` event and the stream closes. `Last-Event-ID` resumes: a version the
/// client has seen is not sent again.
#[utoipa::path(
    get,
    path = "/imports/{id}/events",
    tag = "imports",
    params(("id" = Uuid, Path, description = "The import's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "text/event-stream of `progress` events, then `end`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`id` is not a UUID", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:write`", body = crate::error::Body),
        (status = 404, description = "No such import for this application", body = crate::error::Body),
        (status = 503, description = "The database is unavailable", body = crate::error::Body),
    )
)]
pub(crate) async fn progress_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let import = owned(&state.reads, &caller, &id).await?;
    let seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let events =
        progress(state.reads.clone(), import, seen).map(|(kind, import)| Ok(event(kind, &import)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The progress of one import, polling its row: `("progress", import)` when it changed since
/// version `seen` or [`SSE_HEARTBEAT`] passed, then `("end", import)` once it is finished. The
/// api's stream and the console's are this one, rendered differently.
pub fn progress(
    db: DatabaseConnection,
    first: ImportOut,
    seen: Option<i64>,
) -> impl Stream<Item = (&'static str, ImportOut)> {
    struct Poll {
        db: DatabaseConnection,
        id: Uuid,
        current: Option<ImportOut>,
        sent: Option<i64>,
        last_sent: tokio::time::Instant,
        ended: bool,
    }
    let start = Poll {
        db,
        id: first.id,
        current: Some(first),
        sent: seen,
        last_sent: tokio::time::Instant::now(),
        ended: false,
    };
    futures::stream::unfold(start, |mut poll| async move {
        if poll.ended {
            return None;
        }
        loop {
            if let Some(import) = poll.current.take() {
                let fresh = poll.sent.is_none_or(|v| import.version > v);
                let due = poll.last_sent.elapsed() >= SSE_HEARTBEAT;
                if import.finished() {
                    poll.ended = true;
                    return Some((("end", import), poll));
                }
                if fresh || due {
                    poll.sent = Some(import.version);
                    poll.last_sent = tokio::time::Instant::now();
                    return Some((("progress", import), poll));
                }
            }
            let due_in = SSE_HEARTBEAT.saturating_sub(poll.last_sent.elapsed());
            tokio::time::sleep(SSE_POLL.min(due_in)).await;
            match imports::get(&poll.db, poll.id, None).await {
                Ok(Some(found)) => poll.current = Some(found),
                Ok(None) => return None,
                // A replica that cannot read the database says nothing this round; the
                // client's reconnection (with Last-Event-ID) lands wherever it can.
                Err(e) => tracing::warn!(error = %e, "cannot read an import's progress"),
            }
        }
    })
}

fn event(kind: &str, import: &ImportOut) -> Event {
    Event::default()
        .event(kind)
        .id(import.version.to_string())
        .json_data(import)
        .unwrap_or_else(|_| Event::default().event(kind).id(import.version.to_string()))
}
