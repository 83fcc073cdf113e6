//! Accepting an event: check it, stamp it, publish it, and answer only after the confirm.

use chrono::Utc;
use eye_core::{Envelope, EnvelopeV1, EventIn, Source};
use uuid::Uuid;

use crate::auth::{Caller, SCOPE_EVENTS_WRITE};
use crate::error::ApiError;
use crate::state::AppState;

/// Publishes the event for `caller`; Ok(event id) once the broker has confirmed it.
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    event: EventIn,
    request_id: Option<String>,
) -> Result<Uuid, ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let event = event.into_event().map_err(|e| ApiError::InvalidField {
        field: e.field,
        message: e.message,
    })?;
    let envelope = Envelope::V1(EnvelopeV1 {
        app_id: caller.app_id.clone(),
        source: Source::Http,
        received_at: Utc::now(),
        request_id,
        event,
    });
    let request_id = match &envelope {
        Envelope::V1(v1) => v1.request_id.as_deref(),
    };
    state
        .publisher
        .publish(&envelope, &caller.app_id, request_id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string(), state.retry_after_secs))?;
    Ok(envelope.event_id())
}
