//! Replay: re-submit refused events through the queue with their original envelope (and so
//! their original event id), after a rule was fixed, and poisoned ones (past the broker's
//! delivery limit) after the cause was. Storage is idempotent on (application, event id), so a
//! replay stores each event once, never twice, however often it runs; an event refused again
//! just bumps its dead letter's `attempts`. A poisoned row is released once its event is back
//! in the queue (the worker's verdict then speaks for it), so `/errors?kind=poisoned` lists
//! what is held.

use chrono::{DateTime, Utc};
use eye_core::Envelope;
use futures::future::join_all;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::publisher::Publisher;
use crate::store::dead_letters::{self, ReplaySelection};

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
    let selection = ReplaySelection {
        event_ids: &request.event_ids,
        validator: request.validator.as_deref(),
        app_id: request.app_id.as_deref(),
    };
    let candidates = dead_letters::replay_candidates(db, selection, MAX_REPLAY).await?;
    let mut report = ReplayReport::default();
    let replayable: Vec<Replayable> = candidates
        .into_iter()
        .filter_map(|c| {
            let envelope = c
                .payload
                .and_then(|text| serde_json::from_str::<Envelope>(&text).ok());
            if envelope.is_none() {
                report.skipped += 1;
            }
            Some(Replayable {
                envelope: envelope?,
                held: c.poisoned.then_some((c.id, c.last_seen)),
            })
        })
        .collect();
    for chunk in replayable.chunks(CONCURRENCY) {
        let results = join_all(chunk.iter().map(|r| publisher.publish(&r.envelope))).await;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            return Err(ApiError::Unavailable {
                reason: format!("the event queue is unavailable: {e}"),
                retry_after: retry_after_secs,
            });
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

/// Releases the poisoned rows whose events the broker has confirmed back in the queue. A
/// row left behind by a failure here is harmless: the next replay publishes it again (stored
/// once all the same) and releases it.
async fn release(db: &DatabaseConnection, held: Vec<(Uuid, DateTime<Utc>)>) {
    if let Err(e) = dead_letters::release(db, held).await {
        tracing::warn!(error = %e, "replayed poisoned events stay listed until the next replay");
    }
}
