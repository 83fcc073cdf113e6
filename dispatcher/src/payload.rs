//! Message bodies: `{"type", "timestamp", "data"}` as the Standard Webhooks specification
//! recommends. A stored event's body is a function of the stored row alone (its
//! `timestamp` is the row's `stored_at`), so every attempt sends the same bytes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::outbox::EventRow;

#[derive(Serialize)]
struct Body<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    data: T,
}

#[derive(Serialize)]
struct StoredEvent<'a> {
    app_id: &'a str,
    id: Uuid,
    session_id: Uuid,
    category: &'a str,
    name: &'a str,
    data: &'a RawValue,
    timestamp: String,
    source: &'a str,
    received_at: String,
    stored_at: String,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The body of `event.stored`.
pub fn stored(event: &EventRow) -> Result<Vec<u8>, serde_json::Error> {
    let data: Box<RawValue> = RawValue::from_string(event.data.clone())?;
    serde_json::to_vec(&Body {
        kind: eye_core::webhook::KIND_STORED,
        timestamp: time(event.stored_at),
        data: StoredEvent {
            app_id: &event.app_id,
            id: event.id,
            session_id: event.session_id,
            category: &event.category,
            name: &event.name,
            data: &data,
            timestamp: time(event.timestamp),
            source: &event.source,
            received_at: time(event.received_at),
            stored_at: time(event.stored_at),
        },
    })
}

/// The body of a notification whose `data` was recorded with it (`event.erased`).
pub fn notification(
    kind: &str,
    at: DateTime<Utc>,
    data: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let data: Box<RawValue> = RawValue::from_string(data.to_owned())?;
    serde_json::to_vec(&Body {
        kind,
        timestamp: time(at),
        data: &data,
    })
}

/// The body of `POST /webhooks/{id}/test`.
pub fn test(subscription: Uuid) -> Vec<u8> {
    serde_json::json!({
        "type": eye_core::webhook::KIND_TEST,
        "timestamp": time(Utc::now()),
        "data": {"subscription_id": subscription, "message": "a test from The Eye"},
    })
    .to_string()
    .into_bytes()
}
