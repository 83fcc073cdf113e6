//! From a poisoned message body to its `poisoned` dead letters, one per event. No broker
//! types here (the consumer reads the headers into a [`Poisoning`]), so it is tested alone.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use eye_core::entity::dead_letter;
use eye_core::queue::DELIVERY_LIMIT;
use eye_core::{BadEnvelope, Envelope, Message, storable};
use sea_orm::ActiveValue;
use serde_json::{Value, json};
use uuid::Uuid;

/// What the broker said when it moved the message (its `x-death` and `x-delivery-count`
/// headers), each part only when it was there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poisoning {
    /// `x-death` reason: `delivery_limit` for a message past the limit.
    pub reason: Option<String>,
    /// The queue it was moved from.
    pub queue: Option<String>,
    /// Deliveries counted by the broker.
    pub deliveries: Option<i64>,
}

impl Poisoning {
    /// The dead letter's `message`: what happened, and what to do about it.
    pub fn message(&self) -> String {
        let times = match self.deliveries {
            Some(n) => format!("{n} times"),
            None => format!("more than {DELIVERY_LIMIT} times"),
        };
        let mut said = Vec::new();
        if let Some(reason) = &self.reason {
            said.push(format!("reason {reason}"));
        }
        if let Some(queue) = &self.queue {
            said.push(format!("from {queue}"));
        }
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(" (broker: {})", said.join(", "))
        };
        format!(
            "never judged: its message was delivered {times} without an ack (delivery limit \
             {DELIVERY_LIMIT}; workers killed or cut off while holding it) and moved to the poison \
             queue{said}; replay it once the cause is fixed"
        )
    }
}

/// A `poisoned` dead letter, with the (application, event id) it is unique on when it has both.
#[derive(Debug, Clone)]
pub struct Poisoned {
    pub key: Option<(String, Uuid)>,
    pub row: dead_letter::ActiveModel,
}

/// One row per event of the body: a readable envelope keeps its provenance and is replayable
/// (`payload`); an unreadable one, or a body that is no message at all, is kept byte for byte
/// under whatever provenance could be read. An event twice in the body is one row.
pub fn rows(body: &[u8], why: &Poisoning, now: DateTime<Utc>) -> Vec<Poisoned> {
    let envelopes = match Message::decode(body) {
        Ok(envelopes) => envelopes,
        Err(e) => {
            return vec![whole(
                body,
                why,
                &format!("cannot decode the message: {e}"),
                now,
            )];
        }
    };
    let mut seen = HashSet::new();
    envelopes
        .into_iter()
        .map(|envelope| match envelope {
            Ok(envelope) => of_envelope(&envelope, why, now),
            Err(bad) => of_bad_envelope(bad, why, now),
        })
        .filter(|p| p.key.as_ref().is_none_or(|k| seen.insert(k.clone())))
        .collect()
}

/// The whole body as one row of bytes, with `detail` saying why it is not split into events.
pub fn whole(body: &[u8], why: &Poisoning, detail: &str, now: DateTime<Utc>) -> Poisoned {
    let mut row = blank(why, now);
    row.message = ActiveValue::Set(format!("{}; {detail}", why.message()));
    // Kept as JSON too when it is JSON; jsonb refuses NUL characters.
    let payload = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| !storable::has_nul(v));
    row.payload = ActiveValue::Set(payload);
    row.raw = ActiveValue::Set(Some(body.to_vec()));
    Poisoned { key: None, row }
}

fn of_envelope(envelope: &Envelope, why: &Poisoning, now: DateTime<Utc>) -> Poisoned {
    let mut row = blank(why, now);
    // An envelope holding NUL characters cannot go into jsonb: kept byte for byte instead
    // (and so not replayable, like the refused events kept that way).
    match serde_json::to_value(envelope) {
        Ok(value) if !storable::has_nul(&value) => row.payload = ActiveValue::Set(Some(value)),
        _ => row.raw = ActiveValue::Set(Some(envelope.to_json())),
    }
    let app_id = text(&envelope.app_id);
    row.app_id = ActiveValue::Set(app_id.clone());
    row.event_id = ActiveValue::Set(Some(envelope.event.id));
    row.source = ActiveValue::Set(text(&envelope.source.to_string()));
    row.category = ActiveValue::Set(text(&envelope.event.category));
    row.name = ActiveValue::Set(text(&envelope.event.name));
    Poisoned {
        key: app_id.map(|app| (app, envelope.event.id)),
        row,
    }
}

fn of_bad_envelope(bad: BadEnvelope, why: &Poisoning, now: DateTime<Utc>) -> Poisoned {
    let mut row = blank(why, now);
    row.message = ActiveValue::Set(format!(
        "{}; its envelope cannot be decoded: {}",
        why.message(),
        bad.reason
    ));
    row.raw = ActiveValue::Set(Some(bad.raw.into_bytes()));
    let app_id = bad.app_id.as_deref().and_then(text);
    row.app_id = ActiveValue::Set(app_id.clone());
    row.event_id = ActiveValue::Set(bad.event_id);
    row.source = ActiveValue::Set(bad.source.as_deref().and_then(text));
    Poisoned {
        key: app_id.zip(bad.event_id),
        row,
    }
}

/// A poisoned row with no event in it yet.
fn blank(why: &Poisoning, now: DateTime<Utc>) -> dead_letter::ActiveModel {
    let message = why.message();
    dead_letter::ActiveModel {
        id: ActiveValue::Set(Uuid::now_v7()),
        kind: ActiveValue::Set(dead_letter::KIND_POISONED.into()),
        app_id: ActiveValue::Set(None),
        event_id: ActiveValue::Set(None),
        source: ActiveValue::Set(None),
        category: ActiveValue::Set(None),
        name: ActiveValue::Set(None),
        validator: ActiveValue::Set(Some(dead_letter::DELIVERY_LIMIT_RULE.into())),
        field: ActiveValue::Set(None),
        reasons: ActiveValue::Set(json!([{
            "validator": dead_letter::DELIVERY_LIMIT_RULE,
            "field": "",
            "message": message,
        }])),
        message: ActiveValue::Set(message),
        payload: ActiveValue::Set(None),
        raw: ActiveValue::Set(None),
        attempts: ActiveValue::Set(1),
        first_seen: ActiveValue::Set(now),
        last_seen: ActiveValue::Set(now),
    }
}

/// Text columns cannot hold NUL characters: such a value is left out (the bytes keep it).
fn text(s: &str) -> Option<String> {
    (!s.contains('\0')).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(app: &str, n: u128) -> Value {
        json!({
            "app_id": app,
            "source": "http",
            "received_at": "2024-01-01T00:00:00Z",
            "event": {
                "id": Uuid::from_u128(n),
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "category": "c", "name": "n", "data": {"k": "v"},
                "timestamp": "2024-01-01T00:00:00Z"
            }
        })
    }

    fn set<T: Into<sea_orm::Value>>(v: ActiveValue<T>) -> T {
        match v {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) => v,
            ActiveValue::NotSet => panic!("not set"),
        }
    }

    #[test]
    fn each_event_is_a_replayable_row_under_its_own_application_and_id() {
        let mut bad = envelope("b", 3);
        bad["event"]["timestamp"] = json!("not a time");
        let body = json!({"v": "1", "envelopes": [
            envelope("a", 1), envelope("b", 2), bad, envelope("a", 1)
        ]});
        let why = Poisoning {
            reason: Some("delivery_limit".into()),
            queue: Some("eye.events.ingest".into()),
            deliveries: Some(21),
        };
        let out = rows(body.to_string().as_bytes(), &why, Utc::now());
        let keys: Vec<_> = out.iter().map(|p| p.key.clone()).collect();
        let expected = [("a", 1), ("b", 2), ("b", 3)]
            .map(|(app, n)| Some((app.to_owned(), Uuid::from_u128(n))));
        assert_eq!(keys, expected, "one row per event, the duplicate dropped");
        let first = out[0].row.clone();
        assert_eq!(set(first.kind), "poisoned");
        let payload = set(first.payload).expect("a replayable payload");
        let replayed: Envelope = serde_json::from_value(payload).expect("an envelope");
        let sent: Envelope = serde_json::from_value(envelope("a", 1)).expect("an envelope");
        assert_eq!(replayed, sent);
        let message = set(first.message);
        assert!(message.contains("21 times"), "{message}");
        assert!(message.contains("reason delivery_limit"), "{message}");
        let unreadable = out[2].row.clone();
        assert!(set(unreadable.payload).is_none());
        assert!(set(unreadable.raw).is_some());
        assert!(set(unreadable.message).contains("cannot be decoded"));
    }

    #[test]
    fn a_body_that_is_no_message_is_one_row_of_bytes() {
        for body in [&b"garbage"[..], br#"{"v":"9","envelopes":[]}"#, b"\0"] {
            let out = rows(body, &Poisoning::default(), Utc::now());
            assert_eq!(out.len(), 1);
            assert!(out[0].key.is_none());
            assert_eq!(set(out[0].row.raw.clone()).as_deref(), Some(body));
            let message = set(out[0].row.message.clone());
            assert!(message.contains("more than 20 times"), "{message}");
        }
    }

    #[test]
    fn nul_characters_stay_out_of_text_and_jsonb() {
        let mut nul = envelope("a\0", 1);
        nul["event"]["data"] = json!({"k": "\u{0}"});
        let body = json!({"v": "1", "envelopes": [nul]});
        let out = rows(
            body.to_string().as_bytes(),
            &Poisoning::default(),
            Utc::now(),
        );
        assert!(out[0].key.is_none());
        assert!(set(out[0].row.app_id.clone()).is_none());
        assert!(set(out[0].row.payload.clone()).is_none());
        assert!(set(out[0].row.raw.clone()).is_some());
    }
}
