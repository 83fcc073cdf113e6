//! Accepting an event: check it, stamp it, publish it, and answer only after the confirm.

use chrono::Utc;
use eye_core::{Envelope, EventIn, Source};
use uuid::Uuid;

use crate::apps::limits::Quota;
use crate::auth::{Caller, SCOPE_EVENTS_WRITE};
use crate::error::ApiError;
use crate::state::AppState;

/// Publishes the event for `caller`; Ok(event id, what is left of the application's
/// quota) once the broker has confirmed it.
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    event: EventIn,
    request_id: Option<String>,
) -> Result<(Uuid, Quota), ApiError> {
    let envelope = stamp(caller, event, request_id)?;
    // After the checks, so that refused events do not spend the application's quota.
    let quota = caller.charge_event().inspect_err(|_| {
        metrics::counter!("eye_events_refused_total", "reason" => "rate_limited").increment(1);
    })?;
    state.publisher.publish(&envelope).await.map_err(|e| {
        metrics::counter!("eye_events_refused_total", "reason" => "unavailable").increment(1);
        let retry_after = state.retry_after_secs;
        if e.may_be_stored() {
            ApiError::MayBeStored {
                reason: e.to_string(),
                id: envelope.event.id,
                retry_after,
            }
        } else {
            ApiError::Unavailable {
                reason: format!("the event queue is unavailable: {e}; the event was not stored"),
                retry_after,
            }
        }
    })?;
    metrics::counter!("eye_events_accepted_total").increment(1);
    state.auth.usage.accepted(&caller.app_id, 1);
    Ok((envelope.event.id, quota))
}

/// Everything `accept` does before publishing: scope, fields, and the envelope with the
/// caller's application. Also what the benchmark-only no-op route measures.
pub fn stamp(
    caller: &Caller,
    event: EventIn,
    request_id: Option<String>,
) -> Result<Envelope, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let event = event.into_event().map_err(|e| ApiError::InvalidField {
        field: e.field,
        message: e.message,
    })?;
    Ok(Envelope {
        app_id: caller.app_id.clone(),
        source: Source::Http,
        received_at: Utc::now(),
        request_id,
        event,
    })
}
