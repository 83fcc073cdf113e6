//! Replay: re-submit refused events through the queue with their original envelope (and so
//! their original event id), after a rule was fixed, and poisoned ones (past the broker's
//! delivery limit) after the cause was. Storage is idempotent on (application, event id), so a
//! replay stores each event once, never twice, however often it runs; an event refused again
//! just bumps its dead letter's `attempts`. A poisoned row is released once its event is back
//! in the queue (the worker's verdict then speaks for it), so `/errors?kind=poisoned` lists
//! what is held.

use chrono::{DateTime, Utc};
use eye_core::Envelope;
use eye_core::entity::dead_letter;
use futures::future::join_all;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::publisher::Publisher;
use crate::store::events::db_error;

/// Most dead letters one replay call re-submits; call again for more.
pub const MAX_REPLAY: u64 = 10_000;
/// Envelopes published at once: enough for group commit to fill messages.
const CONCURRENCY: usize = 512;

/// Which refused events to replay: by event id, by the rule that refused them, or both.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Event ids (as answered by `POST /events`).
    #[serde(default)]
    pub event_ids: Vec<Uuid>,
    /// The rule that refused them (`validator` of the dead letter; `delivery_limit` for the
    /// poisoned ones).
    #[serde(default)]
    pub validator: Option<String>,
    /// Only this application's.
    #[serde(default)]
    pub app_id: Option<String>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    /// Re-published and confirmed by the broker.
    pub replayed: u64,
    /// Kept byte for byte only (not JSON-storable) or unreadable: not replayed.
    pub skipped: u64,
}

/// Publishes the matching refused events again; Ok once the broker confirmed every one.
pub async fn replay(
    db: &DatabaseConnection,
    publisher: &Publisher,
    request: &ReplayRequest,
    retry_after_secs: u32,
) -> Result<ReplayReport, ApiError> {
    if request.event_ids.is_empty() && request.validator.is_none() && request.app_id.is_none() {
        return Err(ApiError::InvalidField {
            field: "event_ids".into(),
            message: "give event_ids, validator or app_id: a replay of everything is refused"
                .into(),
        });
    }
    let mut query = dead_letter::Entity::find().filter(
        dead_letter::Column::Kind.is_in([dead_letter::KIND_INVALID, dead_letter::KIND_POISONED]),
    );
    if !request.event_ids.is_empty() {
        query = query.filter(dead_letter::Column::EventId.is_in(request.event_ids.clone()));
    }
    if let Some(validator) = &request.validator {
        query = query.filter(dead_letter::Column::Validator.eq(validator.as_str()));
    }
    if let Some(app) = &request.app_id {
        query = query.filter(dead_letter::Column::AppId.eq(app.as_str()));
    }
    let rows: Vec<(Uuid, String, DateTime<Utc>, Option<String>)> = query
        .select_only()
        .columns([
            dead_letter::Column::Id,
            dead_letter::Column::Kind,
            dead_letter::Column::LastSeen,
        ])
        .column_as(Expr::cust(r#""dead_letters"."payload"::text"#), "payload")
        .order_by_asc(dead_letter::Column::FirstSeen)
        .limit(MAX_REPLAY)
        .into_tuple()
        .all(db)
        .await
        .map_err(db_error)?;
    let mut report = ReplayReport::default();
    let replayable: Vec<Replayable> = rows
        .into_iter()
        .filter_map(|(id, kind, last_seen, payload)| {
            let envelope = payload.and_then(|text| serde_json::from_str::<Envelope>(&text).ok());
            if envelope.is_none() {
                report.skipped += 1;
            }
            Some(Replayable {
                envelope: envelope?,
                held: (kind == dead_letter::KIND_POISONED).then_some((id, last_seen)),
            })
        })
        .collect();
    for chunk in replayable.chunks(CONCURRENCY) {
        let results = join_all(chunk.iter().map(|r| publisher.publish(&r.envelope))).await;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            return Err(ApiError::Unavailable(e.to_string(), retry_after_secs));
        }
        report.replayed += chunk.len() as u64;
        release(db, chunk.iter().filter_map(|r| r.held).collect()).await;
    }
    Ok(report)
}

/// A dead letter's envelope, and the (id, last_seen) of its row when it is a poisoned one.
struct Replayable {
    envelope: Envelope,
    held: Option<(Uuid, DateTime<Utc>)>,
}

/// Deletes the poisoned rows whose events the broker has confirmed back in the queue, unless
/// a worker touched a row meanwhile (`last_seen` moved): then the row is its newer verdict.
/// A row left behind by a failure here is harmless: the next replay publishes it again
/// (stored once all the same) and releases it.
async fn release(db: &DatabaseConnection, held: Vec<(Uuid, DateTime<Utc>)>) {
    if held.is_empty() {
        return;
    }
    let released = dead_letter::Entity::delete_many()
        .filter(dead_letter::Column::Kind.eq(dead_letter::KIND_POISONED))
        .filter(
            Expr::tuple([
                Expr::col(dead_letter::Column::Id),
                Expr::col(dead_letter::Column::LastSeen),
            ])
            .in_tuples(held),
        )
        .exec(db)
        .await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "replayed poisoned events stay listed until the next replay");
    }
}
