//! Dead letters: why events were refused (`GET /errors`), and the rows a replay re-publishes
//! and then releases.

use chrono::{DateTime, Utc};
use eye_core::entity::dead_letter;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::cursor::{Cursor, cut_page};
use super::{StoreError, raw_json, rfc3339};

/// Which dead letters to read. `app_id` None means every application (admins only; the
/// undecodable messages, which belong to no application, are only visible to admins).
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
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

/// A `dead_letters` row with its jsonb columns as text, passed on unparsed (see
/// [`raw_json`]).
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
    type Error = StoreError;

    fn try_from(r: DeadLetterRow) -> Result<Self, StoreError> {
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

/// A page of dead letters, oldest first.
pub async fn list(
    db: &DatabaseConnection,
    filter: &DeadLetterFilter,
) -> Result<ErrorPage, StoreError> {
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
    .await?;
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

/// Which dead letters a replay takes: refused by a rule (`invalid`) or `poisoned`, and
/// matching every selector given.
#[derive(Debug, Clone, Copy)]
pub struct ReplaySelection<'a> {
    pub event_ids: &'a [Uuid],
    pub validator: Option<&'a str>,
    pub app_id: Option<&'a str>,
}

/// A dead letter a replay may re-publish.
#[derive(Debug)]
pub struct ReplayCandidate {
    pub id: Uuid,
    /// The envelope as stored (JSON text); None when only the raw bytes could be kept.
    pub payload: Option<String>,
    /// Held by the poison consumer rather than refused by a rule.
    pub poisoned: bool,
    pub last_seen: DateTime<Utc>,
}

/// The first `limit` dead letters `selection` matches, oldest first.
pub async fn replay_candidates(
    db: &DatabaseConnection,
    selection: ReplaySelection<'_>,
    limit: u64,
) -> Result<Vec<ReplayCandidate>, StoreError> {
    use dead_letter::Column;
    let mut query = dead_letter::Entity::find()
        .filter(Column::Kind.is_in([dead_letter::KIND_INVALID, dead_letter::KIND_POISONED]));
    if !selection.event_ids.is_empty() {
        query = query.filter(Column::EventId.is_in(selection.event_ids.iter().copied()));
    }
    if let Some(validator) = selection.validator {
        query = query.filter(Column::Validator.eq(validator));
    }
    if let Some(app) = selection.app_id {
        query = query.filter(Column::AppId.eq(app));
    }
    let rows: Vec<(Uuid, String, DateTime<Utc>, Option<String>)> = query
        .select_only()
        .columns([Column::Id, Column::Kind, Column::LastSeen])
        .column_as(Expr::cust(r#""dead_letters"."payload"::text"#), "payload")
        .order_by_asc(Column::FirstSeen)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, last_seen, payload)| ReplayCandidate {
            id,
            payload,
            poisoned: kind == dead_letter::KIND_POISONED,
            last_seen,
        })
        .collect())
}

/// Deletes the poisoned rows `held` (id, last_seen) whose events the broker has confirmed
/// back in the queue, unless a worker touched a row meanwhile (`last_seen` moved): then the
/// row is its newer verdict.
pub async fn release(
    db: &DatabaseConnection,
    held: Vec<(Uuid, DateTime<Utc>)>,
) -> Result<(), StoreError> {
    if held.is_empty() {
        return Ok(());
    }
    dead_letter::Entity::delete_many()
        .filter(dead_letter::Column::Kind.eq(dead_letter::KIND_POISONED))
        .filter(
            Expr::tuple([
                Expr::col(dead_letter::Column::Id),
                Expr::col(dead_letter::Column::LastSeen),
            ])
            .in_tuples(held),
        )
        .exec(db)
        .await?;
    Ok(())
}
