//! The dead-letter side of the read API: why events were refused (`GET /errors`) and what
//! became of one event (`GET /events/{id}/status`).

use chrono::{DateTime, SecondsFormat, Utc};
use eye_core::entity::{dead_letter, event};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::query::Cursor;
use crate::reads::db_error;

/// Which dead letters to read. `app_id` None means every application (admins only; the
/// undecodable messages, which belong to no application, are only visible to admins).
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    pub app_id: Option<String>,
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
    /// `invalid` (refused by a rule) or `undecodable` (not a message at all).
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
    pub reasons: serde_json::Value,
    /// The original envelope, when it could be kept as JSON.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
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
    /// `stored`, `rejected`, or `queued` (accepted, not yet judged — or never accepted: the
    /// api keeps no list of ids, the queue is the only record until a worker judges it).
    pub status: &'static str,
    /// Why it was rejected (empty otherwise).
    #[schema(value_type = Vec<Object>)]
    pub reasons: serde_json::Value,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl From<dead_letter::Model> for DeadLetterOut {
    fn from(m: dead_letter::Model) -> Self {
        Self {
            id: m.id,
            kind: m.kind,
            app_id: m.app_id,
            event_id: m.event_id,
            source: m.source,
            category: m.category,
            name: m.name,
            validator: m.validator,
            field: m.field,
            message: m.message,
            reasons: m.reasons,
            payload: m.payload,
            attempts: m.attempts,
            first_seen: rfc3339(m.first_seen),
            last_seen: rfc3339(m.last_seen),
        }
    }
}

/// A page of dead letters, oldest first.
pub async fn list(db: &DatabaseConnection, filter: &ErrorFilter) -> Result<ErrorPage, ApiError> {
    use dead_letter::Column;
    let mut query = dead_letter::Entity::find();
    if let Some(app) = &filter.app_id {
        query = query.filter(Column::AppId.eq(app.as_str()));
    }
    for (column, value) in [
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
    let mut rows = query
        .order_by_asc(Column::FirstSeen)
        .order_by_asc(Column::Id)
        .limit(filter.limit + 1)
        .all(db)
        .await
        .map_err(db_error)?;
    let more = rows.len() as u64 > filter.limit;
    rows.truncate(filter.limit as usize);
    let next_cursor = more.then(|| rows.last()).flatten().map(|last| {
        Cursor {
            timestamp: last.first_seen,
            id: last.id,
        }
        .encode()
    });
    Ok(ErrorPage {
        data: rows.into_iter().map(DeadLetterOut::from).collect(),
        next_cursor,
    })
}

/// Stored, rejected, or still queued, as far as the database knows.
pub async fn status(
    db: &DatabaseConnection,
    app_id: Option<&str>,
    id: Uuid,
) -> Result<EventStatus, ApiError> {
    let mut stored = event::Entity::find().filter(event::Column::Id.eq(id));
    if let Some(app) = app_id {
        stored = stored.filter(event::Column::AppId.eq(app));
    }
    if stored.one(db).await.map_err(db_error)?.is_some() {
        return Ok(EventStatus {
            id,
            status: "stored",
            reasons: serde_json::Value::Array(Vec::new()),
        });
    }
    let mut refused = dead_letter::Entity::find().filter(dead_letter::Column::EventId.eq(id));
    if let Some(app) = app_id {
        refused = refused.filter(dead_letter::Column::AppId.eq(app));
    }
    Ok(match refused.one(db).await.map_err(db_error)? {
        Some(dead) => EventStatus {
            id,
            status: "rejected",
            reasons: dead.reasons,
        },
        None => EventStatus {
            id,
            status: "queued",
            reasons: serde_json::Value::Array(Vec::new()),
        },
    })
}
