//! A JSON provider's imported records (`json_records`, kept by the workers): one by remote
//! id, a resource's records, or those belonging to a parent (the comments of a post), in
//! remote id order (text) with keyset pagination. Scoped like events: a caller sees the
//! records of the provider its application is named after, admins every provider's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement, Value};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{StoreError, raw_json, rfc3339};

/// Longest remote id a cursor may carry (the fetcher's bound).
const MAX_ID_BYTES: usize = 128;

/// Where a page of records ended: the last remote id. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCursor(pub String);

impl RecordCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The cursor `encode` wrote, or None (not base64, not UTF-8, NUL, too long).
    pub fn decode(text: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        let id = String::from_utf8(raw).ok()?;
        (!id.contains('\0') && !id.is_empty() && id.len() <= MAX_ID_BYTES).then_some(Self(id))
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct RecordFilter {
    pub provider: String,
    pub resource: String,
    /// Only the records belonging to this parent.
    pub parent_id: Option<String>,
    /// Records gone from the remote too.
    pub include_removed: bool,
    pub limit: u64,
    pub after: Option<RecordCursor>,
}

/// An imported record as the api shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordOut {
    pub provider: String,
    pub resource: String,
    /// The record's id at the remote, as text.
    pub remote_id: String,
    /// Stable UUIDv5 of (provider, resource, remote id): the session of its events.
    pub id: Uuid,
    pub parent_id: Option<String>,
    /// The record as the remote sent it (its last version, also once removed).
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    pub content_hash: String,
    /// Gone from the remote (kept, not deleted).
    pub removed: bool,
    pub removed_at: Option<String>,
    /// Versions stored: new content, a removal and a return each count one.
    pub versions: i32,
    pub first_seen: String,
    /// Fetch time of the version shown.
    pub updated_at: String,
}

/// One page and where the next one starts (null on the last page).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordPage {
    pub data: Vec<RecordOut>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    provider: String,
    resource: String,
    remote_id: String,
    id: Uuid,
    parent_id: Option<String>,
    data: String,
    content_hash: String,
    removed: bool,
    removed_at: Option<DateTime<Utc>>,
    versions: i32,
    first_seen: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for RecordOut {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            provider: r.provider,
            resource: r.resource,
            remote_id: r.remote_id,
            id: r.id,
            parent_id: r.parent_id,
            data: raw_json(r.data)?,
            content_hash: r.content_hash,
            removed: r.removed,
            removed_at: r.removed_at.map(rfc3339),
            versions: r.versions,
            first_seen: rfc3339(r.first_seen),
            updated_at: rfc3339(r.updated_at),
        })
    }
}

const COLUMNS: &str = "provider, resource, remote_id, id, parent_id, data::text AS data, \
     content_hash, removed, removed_at, versions, first_seen, updated_at";

/// One record, or None.
pub async fn get(
    db: &DatabaseConnection,
    provider: &str,
    resource: &str,
    remote_id: &str,
) -> Result<Option<RecordOut>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM json_records \
         WHERE provider = $1 AND resource = $2 AND remote_id = $3"
    );
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [provider.into(), resource.into(), remote_id.into()],
    ))
    .one(db)
    .await?;
    row.map(RecordOut::try_from).transpose()
}

/// A page of records matching `filter`, by remote id.
pub async fn list(
    db: &DatabaseConnection,
    filter: &RecordFilter,
) -> Result<RecordPage, StoreError> {
    let mut sql =
        format!("SELECT {COLUMNS} FROM json_records WHERE provider = $1 AND resource = $2");
    let mut values: Vec<Value> = vec![
        filter.provider.clone().into(),
        filter.resource.clone().into(),
    ];
    if let Some(parent) = &filter.parent_id {
        values.push(parent.clone().into());
        sql.push_str(&format!(" AND parent_id = ${}", values.len()));
    }
    if !filter.include_removed {
        sql.push_str(" AND NOT removed");
    }
    if let Some(after) = &filter.after {
        values.push(after.0.clone().into());
        sql.push_str(&format!(" AND remote_id > ${}", values.len()));
    }
    values.push(i64::try_from(filter.limit + 1).unwrap_or(i64::MAX).into());
    sql.push_str(&format!(" ORDER BY remote_id LIMIT ${}", values.len()));
    let mut rows = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .all(db)
    .await?;
    let more = rows.len() as u64 > filter.limit;
    rows.truncate(filter.limit as usize);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|last| RecordCursor(last.remote_id.clone()).encode());
    Ok(RecordPage {
        data: rows
            .into_iter()
            .map(RecordOut::try_from)
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let c = RecordCursor("42".into());
        assert_eq!(RecordCursor::decode(&c.encode()), Some(c));
        assert_eq!(RecordCursor::decode("!!"), None);
        assert_eq!(RecordCursor::decode(&URL_SAFE_NO_PAD.encode("a\0")), None);
        assert_eq!(RecordCursor::decode(""), None);
        assert_eq!(
            RecordCursor::decode(&URL_SAFE_NO_PAD.encode("x".repeat(200))),
            None
        );
    }
}
