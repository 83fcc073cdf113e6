//! The read side: events by application, session, type and time, in (timestamp, id) order
//! with keyset pagination. Every query is scoped to one application unless the caller is
//! an admin, and runs under the pool's statement timeout.

use chrono::{DateTime, SecondsFormat, Utc};
use eye_core::entity::event;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ApiError;
use crate::params::Cursor;

/// What to read. `app_id` None means every application (admins only).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub app_id: Option<String>,
    pub session_id: Option<Uuid>,
    pub category: Option<String>,
    pub name: Option<String>,
    /// Inclusive lower bound on the event's timestamp.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the event's timestamp.
    pub to: Option<DateTime<Utc>>,
    pub limit: u64,
    pub after: Option<Cursor>,
}

/// A stored event as the api shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: Uuid,
    pub app_id: String,
    pub session_id: Uuid,
    pub category: String,
    pub name: String,
    /// The event's data as stored, passed through without being parsed again.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// RFC 3339, UTC, microseconds.
    pub timestamp: String,
    pub source: String,
    pub received_at: String,
}

/// One page and where the next one starts (null on the last page).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub data: Vec<EventOut>,
    pub next_cursor: Option<String>,
}

/// Times as the read API writes them: RFC 3339, UTC, microseconds.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An `events` row with `data` as JSON text. jsonb keeps numbers exactly, so one can hold
/// more than an f64 parses back (found by schemathesis: 1.7976931348623157e308 came back as a
/// 309-digit integer serde_json refused): the api passes the text through instead.
#[derive(Debug, FromQueryResult)]
struct EventRow {
    id: Uuid,
    app_id: String,
    session_id: Uuid,
    category: String,
    name: String,
    data: String,
    timestamp: DateTime<Utc>,
    source: String,
    received_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for EventOut {
    type Error = ApiError;

    fn try_from(r: EventRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: r.id,
            app_id: r.app_id,
            session_id: r.session_id,
            category: r.category,
            name: r.name,
            data: raw_json(r.data)?,
            timestamp: rfc3339(r.timestamp),
            source: r.source,
            received_at: rfc3339(r.received_at),
        })
    }
}

/// JSON text from a jsonb column as a raw value (PostgreSQL only returns valid JSON).
pub(crate) fn raw_json(text: String) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(text).map_err(|e| ApiError::Internal(e.into()))
}

/// The columns of an event, `data` as text.
fn event_rows(query: Select<event::Entity>) -> sea_orm::Selector<sea_orm::SelectModel<EventRow>> {
    use event::Column;
    query
        .select_only()
        .columns([
            Column::Id,
            Column::AppId,
            Column::SessionId,
            Column::Category,
            Column::Name,
            Column::Timestamp,
            Column::Source,
            Column::ReceivedAt,
        ])
        .column_as(Expr::cust(r#""events"."data"::text"#), "data")
        .into_model::<EventRow>()
}

/// A page of events matching `filter`, oldest first.
pub async fn list(db: &DatabaseConnection, filter: &EventFilter) -> Result<Page, ApiError> {
    let mut query = event::Entity::find();
    if let Some(app) = &filter.app_id {
        query = query.filter(event::Column::AppId.eq(app.as_str()));
    }
    if let Some(session) = filter.session_id {
        query = query.filter(event::Column::SessionId.eq(session));
    }
    if let Some(category) = &filter.category {
        query = query.filter(event::Column::Category.eq(category.as_str()));
    }
    if let Some(name) = &filter.name {
        query = query.filter(event::Column::Name.eq(name.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(event::Column::Timestamp.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(event::Column::Timestamp.lt(to));
    }
    if let Some(after) = filter.after {
        // A row comparison, so PostgreSQL walks the (…, timestamp, id) index from the cursor.
        query = query.filter(Expr::cust_with_values(
            r#"("timestamp", "id") > ($1, $2)"#,
            [after.timestamp.into(), sea_orm::Value::from(after.id)],
        ));
    }
    let mut rows = event_rows(
        query
            .order_by_asc(event::Column::Timestamp)
            .order_by_asc(event::Column::Id)
            .limit(filter.limit + 1),
    )
    .all(db)
    .await
    .map_err(db_error)?;
    let next_cursor = cut_page(&mut rows, filter.limit, |last| Cursor {
        timestamp: last.timestamp,
        id: last.id,
    });
    Ok(Page {
        data: rows
            .into_iter()
            .map(EventOut::try_from)
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}

/// Cuts the `limit + 1` rows a keyset query fetched down to a page; returns the cursor of
/// the next page, if there is one.
pub(crate) fn cut_page<T>(
    rows: &mut Vec<T>,
    limit: u64,
    key: impl Fn(&T) -> Cursor,
) -> Option<String> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    more.then(|| rows.last())
        .flatten()
        .map(|last| key(last).encode())
}

/// One event by id, within `app_id` (None: any application, admins only).
pub async fn get(
    db: &DatabaseConnection,
    app_id: Option<&str>,
    id: Uuid,
) -> Result<Option<EventOut>, ApiError> {
    let mut query = event::Entity::find().filter(event::Column::Id.eq(id));
    if let Some(app) = app_id {
        query = query.filter(event::Column::AppId.eq(app));
    }
    let row = event_rows(query).one(db).await.map_err(db_error)?;
    row.map(EventOut::try_from).transpose()
}

/// A statement timeout is 503 `timeout`; an unreachable database 503 `unavailable`;
/// anything else an internal error (logged, never shown).
pub(crate) fn db_error(e: DbErr) -> ApiError {
    let text = e.to_string();
    if text.contains("statement timeout") || text.contains("57014") {
        return ApiError::Timeout;
    }
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            ApiError::Unavailable("the database is unreachable".into(), 2)
        }
        other => ApiError::Internal(other.into()),
    }
}
