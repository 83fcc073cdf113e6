//! A JSON provider's imported records (issue 15): `GET /providers/{provider}/records/{resource}`
//! (a page of them, by remote id), `.../{resource}/{remote_id}` (one) and
//! `.../{resource}/{remote_id}/{child}` (the records of `child` that belong to it: the
//! comments of a post). Scope `events:read`; a caller sees the records of the provider its
//! application is named after (the application provider events are stored under), admins
//! every provider's.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::{Caller, SCOPE_EVENTS_READ};
use crate::error::ApiError;
use crate::params::{self, Query};
use crate::state::AppState;
use crate::store::json_records::{self, RecordCursor, RecordFilter, RecordOut, RecordPage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/providers/{provider}/records/{resource}",
            get(list_records),
        )
        .route(
            "/providers/{provider}/records/{resource}/{remote_id}",
            get(get_record),
        )
        .route(
            "/providers/{provider}/records/{resource}/{remote_id}/{child}",
            get(child_records),
        )
}

/// Query parameters of the record lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordsQuery {
    /// Only the records belonging to this parent (a comment's `postId`).
    #[serde(default, deserialize_with = "params::text")]
    #[param(min_length = 1)]
    parent: Option<String>,
    /// `true` to list records gone from the remote too (marked `removed`).
    #[serde(default, deserialize_with = "flag")]
    #[param(value_type = Option<bool>)]
    include_removed: bool,
    /// Page size.
    #[serde(default = "params::default_limit", deserialize_with = "params::limit")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000, default = 100)]
    limit: u64,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "record_cursor")]
    #[param(value_type = Option<String>)]
    cursor: Option<RecordCursor>,
}

fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::de::Error;
    match String::deserialize(d)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(D::Error::custom("must be true or false")),
    }
}

fn record_cursor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RecordCursor>, D::Error> {
    use serde::de::Error;
    RecordCursor::decode(&String::deserialize(d)?)
        .map(Some)
        .ok_or_else(|| D::Error::custom("not a cursor this api issued"))
}

/// A path segment the table can hold (text, no NUL, the fetcher's 128-byte bound); anything
/// else names nothing stored.
fn segment(text: &str) -> Result<&str, ApiError> {
    if text.is_empty() || text.len() > 128 || text.contains('\0') {
        return Err(ApiError::NotFound);
    }
    Ok(text)
}

/// The caller may read `provider`'s records: its own application's, or any as an admin.
fn visible(caller: &Caller, provider: &str) -> Result<(), ApiError> {
    caller.require(SCOPE_EVENTS_READ)?;
    match caller.scope_app() {
        Some(app) if app != provider => Err(ApiError::NotFound),
        _ => Ok(()),
    }
}

/// A resource's records, by remote id (text order), a page at a time.
#[utoipa::path(
    get,
    path = "/providers/{provider}/records/{resource}",
    tag = "providers",
    params(
        ("provider" = String, Path, description = "The provider's name (providers file)"),
        ("resource" = String, Path, description = "The resource (`posts`)"),
        RecordsQuery
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of records", body = RecordPage),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 404, description = "Not a provider this caller may read", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    Path((provider, resource)): Path<(String, String)>,
    query: Result<Query<RecordsQuery>, ApiError>,
) -> Result<Json<RecordPage>, ApiError> {
    visible(&caller, &provider)?;
    let Query(q) = query?;
    let filter = RecordFilter {
        provider: segment(&provider)?.to_owned(),
        resource: segment(&resource)?.to_owned(),
        parent_id: q.parent,
        include_removed: q.include_removed,
        limit: q.limit,
        after: q.cursor,
    };
    Ok(Json(json_records::list(&state.reads, &filter).await?))
}

/// One record by its remote id (also once removed: see `removed`).
#[utoipa::path(
    get,
    path = "/providers/{provider}/records/{resource}/{remote_id}",
    tag = "providers",
    params(
        ("provider" = String, Path, description = "The provider's name"),
        ("resource" = String, Path, description = "The resource (`posts`)"),
        ("remote_id" = String, Path, description = "The record's `id` at the remote"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The record", body = RecordOut),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 404, description = "No such record for this caller", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    Path((provider, resource, remote_id)): Path<(String, String, String)>,
) -> Result<Json<RecordOut>, ApiError> {
    visible(&caller, &provider)?;
    json_records::get(
        &state.reads,
        segment(&provider)?,
        segment(&resource)?,
        segment(&remote_id)?,
    )
    .await?
    .map(Json)
    .ok_or(ApiError::NotFound)
}

/// The records of `child` belonging to a record (`/providers/p/records/posts/1/comments`:
/// the comments whose `postId` is 1), by remote id, a page at a time.
#[utoipa::path(
    get,
    path = "/providers/{provider}/records/{resource}/{remote_id}/{child}",
    tag = "providers",
    params(
        ("provider" = String, Path, description = "The provider's name"),
        ("resource" = String, Path, description = "The parent's resource (`posts`)"),
        ("remote_id" = String, Path, description = "The parent's `id`"),
        ("child" = String, Path, description = "The resource whose records belong to it (`comments`)"),
        RecordsQuery
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the child records", body = RecordPage),
        (status = 400, description = "A bad parameter; `field` names it", body = crate::error::Body),
        (status = 401, description = "No, invalid or expired token", body = crate::error::Body),
        (status = 403, description = "The token lacks `events:read`", body = crate::error::Body),
        (status = 404, description = "Not a provider this caller may read", body = crate::error::Body),
        (status = 503, description = "The database is unavailable or the query timed out", body = crate::error::Body),
    )
)]
pub(crate) async fn child_records(
    State(state): State<AppState>,
    caller: Caller,
    Path((provider, resource, remote_id, child)): Path<(String, String, String, String)>,
    query: Result<Query<RecordsQuery>, ApiError>,
) -> Result<Json<RecordPage>, ApiError> {
    visible(&caller, &provider)?;
    let Query(q) = query?;
    segment(&resource)?;
    let filter = RecordFilter {
        provider: segment(&provider)?.to_owned(),
        resource: segment(&child)?.to_owned(),
        parent_id: Some(segment(&remote_id)?.to_owned()),
        include_removed: q.include_removed,
        limit: q.limit,
        after: q.cursor,
    };
    Ok(Json(json_records::list(&state.reads, &filter).await?))
}
