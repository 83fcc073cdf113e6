//! Replay: re-submit refused events through the queue with their original envelope (and so
//! their original event id), after a rule was fixed. Storage is idempotent on (application,
//! event id), so a replay stores each event once, never twice, however often it runs; an
//! event refused again just bumps its dead letter's `attempts`.

use eye_core::Envelope;
use eye_core::entity::dead_letter;
use futures::future::join_all;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::publisher::Publisher;
use crate::reads::db_error;

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
    /// The rule that refused them (`validator` of the dead letter).
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
    let mut query =
        dead_letter::Entity::find().filter(dead_letter::Column::Kind.eq(dead_letter::KIND_INVALID));
    if !request.event_ids.is_empty() {
        query = query.filter(dead_letter::Column::EventId.is_in(request.event_ids.clone()));
    }
    if let Some(validator) = &request.validator {
        query = query.filter(dead_letter::Column::Validator.eq(validator.as_str()));
    }
    if let Some(app) = &request.app_id {
        query = query.filter(dead_letter::Column::AppId.eq(app.as_str()));
    }
    let payloads: Vec<Option<String>> = query
        .select_only()
        .column_as(Expr::cust(r#""dead_letters"."payload"::text"#), "payload")
        .order_by_asc(dead_letter::Column::FirstSeen)
        .limit(MAX_REPLAY)
        .into_tuple()
        .all(db)
        .await
        .map_err(db_error)?;
    let mut report = ReplayReport::default();
    let envelopes: Vec<Envelope> = payloads
        .into_iter()
        .filter_map(|p| {
            let envelope = p.and_then(|text| serde_json::from_str::<Envelope>(&text).ok());
            if envelope.is_none() {
                report.skipped += 1;
            }
            envelope
        })
        .collect();
    for chunk in envelopes.chunks(CONCURRENCY) {
        let results = join_all(chunk.iter().map(|e| publisher.publish(e))).await;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            return Err(ApiError::Unavailable(e.to_string(), retry_after_secs));
        }
        report.replayed += chunk.len() as u64;
    }
    Ok(report)
}
