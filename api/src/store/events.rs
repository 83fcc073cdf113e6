//! Stored events: by application, session, type and time, in (timestamp, id) order with
//! keyset pagination, and what became of one event. Every query is scoped to one
//! application unless the caller is an admin, and runs under the read pool's statement
//! timeout.

use chrono::{DateTime, Utc};
use eye_core::entity::{dead_letter, event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::cursor::{Cursor, cut_page};
use super::partitions::{PartitionBounds, Step};
use super::{StoreError, raw_json, rfc3339};

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

/// An `events` row with `data` as JSON text, passed on unparsed (see [`raw_json`]).
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
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
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

/// The query of `filter`, without order or limit.
fn matching(filter: &EventFilter) -> Select<event::Entity> {
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
    query
}

/// `query` limited to one step of a page: the partitions it reads (as `stored_at` ranges,
/// which PostgreSQL prunes partitions on) and its time horizon. None: nothing to read.
fn within(mut query: Select<event::Entity>, step: &Step) -> Option<Select<event::Entity>> {
    use event::Column;
    if let Some(ranges) = &step.stored_in {
        if ranges.is_empty() {
            return None;
        }
        let mut any = Condition::any();
        for (from, to) in ranges {
            let mut range = Condition::all();
            if let Some(from) = from {
                range = range.add(Column::StoredAt.gte(*from));
            }
            if let Some(to) = to {
                range = range.add(Column::StoredAt.lt(*to));
            }
            any = any.add(range);
        }
        query = query.filter(any);
    }
    if let Some(until) = step.until {
        query = query.filter(Column::Timestamp.lte(until));
    }
    if let Some(after) = step.after {
        query = query.filter(Column::Timestamp.gt(after));
    }
    Some(query)
}

/// A page of events matching `filter`, oldest first. An application's page reads only the
/// partitions that can hold it ([`PartitionBounds`]), in at most two queries.
pub async fn list(
    db: &DatabaseConnection,
    partitions: &PartitionBounds,
    filter: &EventFilter,
) -> Result<Page, StoreError> {
    let want = filter.limit + 1;
    let steps = match &filter.app_id {
        Some(app) => {
            let cursor = filter.after.map(|c| c.timestamp);
            let lo = filter.from.max(cursor);
            partitions.plan(db, app, lo, filter.to).await
        }
        None => vec![Step::default()],
    };
    let mut rows = Vec::new();
    for step in &steps {
        let got = rows.len() as u64;
        if got >= want {
            break;
        }
        let Some(query) = within(matching(filter), step) else {
            continue;
        };
        rows.extend(
            event_rows(
                query
                    .order_by_asc(event::Column::Timestamp)
                    .order_by_asc(event::Column::Id)
                    .limit(want - got),
            )
            .all(db)
            .await?,
        );
    }
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

/// One event by id, within `app_id` (None: any application, admins only).
pub async fn get(
    db: &DatabaseConnection,
    app_id: Option<&str>,
    id: Uuid,
) -> Result<Option<EventOut>, StoreError> {
    let mut query = event::Entity::find().filter(event::Column::Id.eq(id));
    if let Some(app) = app_id {
        query = query.filter(event::Column::AppId.eq(app));
    }
    let row = event_rows(query).one(db).await?;
    row.map(EventOut::try_from).transpose()
}

/// What became of an event the api accepted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventStatus {
    pub id: Uuid,
    /// `stored`, `rejected` (refused by a rule, undecodable, or poisoned: held after too many
    /// deliveries until replayed; `reasons` says which), or `queued` (accepted, not yet judged
    /// — or never accepted: the api keeps no list of ids, the queue is the only record until a
    /// worker judges it).
    pub status: &'static str,
    /// Why it was rejected (empty otherwise).
    #[schema(value_type = Vec<Object>)]
    pub reasons: Box<RawValue>,
}

/// Stored, rejected, or still queued, as far as the database knows. A stored event is
/// `stored` whatever dead letters it also has (a warning, or a poisoned row from a message
/// whose ack was lost).
pub async fn status(
    db: &DatabaseConnection,
    app_id: Option<&str>,
    id: Uuid,
) -> Result<EventStatus, StoreError> {
    let mut stored = event::Entity::find().filter(event::Column::Id.eq(id));
    if let Some(app) = app_id {
        stored = stored.filter(event::Column::AppId.eq(app));
    }
    let stored = stored
        .select_only()
        .column(event::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    if stored.is_some() {
        return Ok(EventStatus {
            id,
            status: "stored",
            reasons: raw_json("[]".to_owned())?,
        });
    }
    let mut refused = dead_letter::Entity::find().filter(dead_letter::Column::EventId.eq(id));
    if let Some(app) = app_id {
        refused = refused.filter(dead_letter::Column::AppId.eq(app));
    }
    let reasons: Option<String> = refused
        .select_only()
        .column_as(Expr::cust(r#""dead_letters"."reasons"::text"#), "reasons")
        .into_tuple()
        .one(db)
        .await?;
    Ok(match reasons {
        Some(reasons) => EventStatus {
            id,
            status: "rejected",
            reasons: raw_json(reasons)?,
        },
        None => EventStatus {
            id,
            status: "queued",
            reasons: raw_json("[]".to_owned())?,
        },
    })
}
