//! The dead-letter side of the read API: why events were refused (`GET /errors`) and what
//! became of one event (`GET /events/{id}/status`).

use chrono::{DateTime, Utc};
use eye_core::entity::{dead_letter, event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ApiError;
use crate::params::Cursor;
use crate::store::events::{cut_page, db_error, raw_json, rfc3339};

/// Which dead letters to read. `app_id` None means every application (admins only; the
/// undecodable messages, which belong to no application, are only visible to admins).
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    pub app_id: Option<String>,
    /// One of [`dead_letter::KINDS`].
    pub kind: Option<String>,
    pub validator: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    /// Inclusive lower bound on `first_seen`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `first_seen`.
    pub to: Option<DateTime<Utc>>,
    pub limit: u64,
    pub after: Option<Cursor>,
}

/// A dead letter as the api shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetterOut {
    pub id: Uuid,
    /// `invalid` (refused by a rule), `warning` (stored; a rule in `warn` mode),
    /// `undecodable` (not a message at all) or `poisoned` (its message went past the broker's
    /// delivery limit: never judged, held until replayed).
    pub kind: String,
    pub app_id: Option<String>,
    pub event_id: Option<Uuid>,
    pub source: Option<String>,
    pub category: Option<String>,
    pub name: Option<String>,
    /// The first rule that refused it; `reasons` lists them all.
    pub validator: Option<String>,
    /// JSON pointer into the event.
    pub field: Option<String>,
    pub message: String,
    /// Every violation: `[{"validator", "field", "message"}]`.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Box<RawValue>,
    /// The original envelope, when it could be kept as JSON.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Box<RawValue>>,
    pub attempts: i32,
    pub first_seen: String,
    pub last_seen: String,
}

/// A page of dead letters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorPage {
    pub data: Vec<DeadLetterOut>,
    pub next_cursor: Option<String>,
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

/// A `dead_letters` row with its jsonb columns as text, passed through unparsed (see
/// `reads::EventRow` for why).
#[derive(Debug, FromQueryResult)]
struct DeadLetterRow {
    id: Uuid,
    kind: String,
    app_id: Option<String>,
    event_id: Option<Uuid>,
    source: Option<String>,
    category: Option<String>,
    name: Option<String>,
    validator: Option<String>,
    field: Option<String>,
    message: String,
    reasons: String,
    payload: Option<String>,
    attempts: i32,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

impl TryFrom<DeadLetterRow> for DeadLetterOut {
    type Error = ApiError;

    fn try_from(r: DeadLetterRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: r.id,
            kind: r.kind,
            app_id: r.app_id,
            event_id: r.event_id,
            source: r.source,
            category: r.category,
            name: r.name,
            validator: r.validator,
            field: r.field,
            message: r.message,
            reasons: raw_json(r.reasons)?,
            payload: r.payload.map(raw_json).transpose()?,
            attempts: r.attempts,
            first_seen: rfc3339(r.first_seen),
            last_seen: rfc3339(r.last_seen),
        })
    }
}

/// The columns of a dead letter, jsonb as text.
fn dead_letter_rows(
    query: Select<dead_letter::Entity>,
) -> sea_orm::Selector<sea_orm::SelectModel<DeadLetterRow>> {
    use dead_letter::Column;
    query
        .select_only()
        .columns([
            Column::Id,
            Column::Kind,
            Column::AppId,
            Column::EventId,
            Column::Source,
            Column::Category,
            Column::Name,
            Column::Validator,
            Column::Field,
            Column::Message,
            Column::Attempts,
            Column::FirstSeen,
            Column::LastSeen,
        ])
        .column_as(Expr::cust(r#""dead_letters"."reasons"::text"#), "reasons")
        .column_as(Expr::cust(r#""dead_letters"."payload"::text"#), "payload")
        .into_model::<DeadLetterRow>()
}

fn empty() -> Result<Box<RawValue>, ApiError> {
    raw_json("[]".to_owned())
}

/// A page of dead letters, oldest first.
pub async fn list(db: &DatabaseConnection, filter: &ErrorFilter) -> Result<ErrorPage, ApiError> {
    use dead_letter::Column;
    let mut query = dead_letter::Entity::find();
    if let Some(app) = &filter.app_id {
        query = query.filter(Column::AppId.eq(app.as_str()));
    }
    for (column, value) in [
        (Column::Kind, &filter.kind),
        (Column::Validator, &filter.validator),
        (Column::Category, &filter.category),
        (Column::Name, &filter.name),
    ] {
        if let Some(value) = value {
            query = query.filter(column.eq(value.as_str()));
        }
    }
    if let Some(from) = filter.from {
        query = query.filter(Column::FirstSeen.gte(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(Column::FirstSeen.lt(to));
    }
    if let Some(after) = filter.after {
        query = query.filter(Expr::cust_with_values(
            r#"("first_seen", "id") > ($1, $2)"#,
            [after.timestamp.into(), sea_orm::Value::from(after.id)],
        ));
    }
    let mut rows = dead_letter_rows(
        query
            .order_by_asc(Column::FirstSeen)
            .order_by_asc(Column::Id)
            .limit(filter.limit + 1),
    )
    .all(db)
    .await
    .map_err(db_error)?;
    let next_cursor = cut_page(&mut rows, filter.limit, |last| Cursor {
        timestamp: last.first_seen,
        id: last.id,
    });
    Ok(ErrorPage {
        data: rows
            .into_iter()
            .map(DeadLetterOut::try_from)
            .collect::<Result<_, _>>()?,
        next_cursor,
    })
}

/// Stored, rejected, or still queued, as far as the database knows. A stored event is
/// `stored` whatever dead letters it also has (a warning, or a poisoned row from a message
/// whose ack was lost).
pub async fn status(
    db: &DatabaseConnection,
    app_id: Option<&str>,
    id: Uuid,
) -> Result<EventStatus, ApiError> {
    let mut stored = event::Entity::find().filter(event::Column::Id.eq(id));
    if let Some(app) = app_id {
        stored = stored.filter(event::Column::AppId.eq(app));
    }
    if stored
        .select_only()
        .column(event::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await
        .map_err(db_error)?
        .is_some()
    {
        return Ok(EventStatus {
            id,
            status: "stored",
            reasons: empty()?,
        });
    }
    let mut refused = dead_letter::Entity::find().filter(dead_letter::Column::EventId.eq(id));
    if let Some(app) = app_id {
        refused = refused.filter(dead_letter::Column::AppId.eq(app));
    }
    Ok(
        match dead_letter_rows(refused).one(db).await.map_err(db_error)? {
            Some(dead) => EventStatus {
                id,
                status: "rejected",
                reasons: raw_json(dead.reasons)?,
            },
            None => EventStatus {
                id,
                status: "queued",
                reasons: empty()?,
            },
        },
    )
}
