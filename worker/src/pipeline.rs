//! From message bodies to rows: decode, validate, and commit a batch. No broker types here,
//! so the whole judgement is testable without RabbitMQ.

use chrono::Utc;
use eye_core::entity::{dead_letter, event};
use eye_core::storable::{self, STORAGE_RULE};
use eye_core::{BadEnvelope, Envelope, Message};
use sea_orm::{ActiveValue, DbErr};
use serde_json::Value;
use uuid::Uuid;

use crate::provider::read_model::{self, PlanRow};
use crate::storage::{Committed, Store};
use crate::validation::{Subject, ValidatorSet, Violation};

/// Decodes and judges messages, and commits batches of verdicts.
#[derive(Debug)]
pub struct Pipeline {
    validators: ValidatorSet,
    store: Store,
}

impl Pipeline {
    pub fn new(validators: ValidatorSet, store: Store) -> Self {
        Self { validators, store }
    }

    /// Judges one message body (one or more events) into `judged`; returns the rows added.
    pub fn judge(&self, body: &[u8], judged: &mut Judged) -> usize {
        match Message::decode(body) {
            Ok(envelopes) => {
                let n = envelopes.len();
                for envelope in envelopes {
                    match envelope {
                        Ok(envelope) => self.judge_envelope(envelope, judged),
                        // One unreadable envelope fails alone, under its own application
                        // and id when they could be read; its neighbours go on.
                        Err(bad) => {
                            metrics::counter!("eye_worker_dead_letters_total", "reason" => "undecodable")
                                .increment(1);
                            judged.dead_letters.push(bad_envelope(bad));
                        }
                    }
                }
                n
            }
            Err(e) => {
                metrics::counter!("eye_worker_dead_letters_total", "reason" => "undecodable")
                    .increment(1);
                judged.dead_letters.push(undecodable(body, &e.to_string()));
                1
            }
        }
    }

    fn judge_envelope(&self, envelope: Envelope, judged: &mut Judged) {
        let subject = Subject {
            app_id: &envelope.app_id,
            source: &envelope.source,
            received_at: envelope.received_at,
            event: &envelope.event,
        };
        let mut violations = unstorable(&envelope);
        let mut warnings = Vec::new();
        if violations.is_empty() {
            let judgement = self.validators.judge(&subject);
            violations = judgement.refusals;
            warnings = judgement.warnings;
        }
        if violations.is_empty() {
            if !warnings.is_empty() {
                // A rule in `warn` mode: the event is stored, and the violation recorded.
                metrics::counter!("eye_worker_warnings_total", "reason" => warnings[0].validator.clone())
                    .increment(1);
                judged
                    .dead_letters
                    .push(refused(&envelope, &warnings, dead_letter::KIND_WARNING));
            }
            if let Some(plan) = read_model::plan_row(&envelope) {
                judged.plans.push(plan);
            }
            judged.received_at.push(envelope.received_at);
            judged.events.push(event_row(envelope));
            return;
        }
        tracing::warn!(
            event_id = %envelope.event.id,
            app_id = %envelope.app_id,
            request_id = envelope.request_id.as_deref().unwrap_or("-"),
            ?violations,
            "event refused"
        );
        metrics::counter!(
            "eye_worker_dead_letters_total",
            "reason" => violations[0].validator.clone()
        )
        .increment(1);
        judged
            .dead_letters
            .push(refused(&envelope, &violations, dead_letter::KIND_INVALID));
    }

    /// Commits a judged batch in one transaction.
    pub async fn commit(&self, judged: &Judged) -> Result<Committed, DbErr> {
        self.store
            .commit(
                judged.events.clone(),
                judged.dead_letters.clone(),
                judged.plans.clone(),
            )
            .await
    }
}

/// The rows a batch turned into.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    pub events: Vec<event::ActiveModel>,
    /// When each of `events` was accepted, for the received-to-stored lag.
    pub received_at: Vec<chrono::DateTime<Utc>>,
    pub dead_letters: Vec<dead_letter::ActiveModel>,
    /// Provider plans to upsert into the read model, in the same transaction.
    pub plans: Vec<PlanRow>,
}

impl Judged {
    /// Rows this batch will write.
    pub fn len(&self) -> usize {
        self.events.len() + self.dead_letters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.events.clear();
        self.received_at.clear();
        self.dead_letters.clear();
        self.plans.clear();
    }
}

/// The storage constraints an envelope breaks, as violations of the [`STORAGE_RULE`]. The
/// api refuses such events at the edge; this catches other producers and older messages.
fn unstorable(envelope: &Envelope) -> Vec<Violation> {
    storable::check_envelope(envelope)
        .into_iter()
        .map(|u| Violation {
            validator: STORAGE_RULE.into(),
            field: u.pointer,
            message: u.message,
        })
        .collect()
}

fn event_row(envelope: Envelope) -> event::ActiveModel {
    let e = envelope.event;
    event::ActiveModel {
        app_id: ActiveValue::Set(envelope.app_id),
        id: ActiveValue::Set(e.id),
        session_id: ActiveValue::Set(e.session_id),
        category: ActiveValue::Set(e.category),
        name: ActiveValue::Set(e.name),
        data: ActiveValue::Set(Value::Object(e.data)),
        timestamp: ActiveValue::Set(e.timestamp),
        source: ActiveValue::Set(envelope.source.to_string()),
        received_at: ActiveValue::Set(envelope.received_at),
        stored_at: ActiveValue::NotSet,
    }
}

/// The dead-letter row of an event: `kind` is invalid (refused) or warning (stored anyway).
fn refused(envelope: &Envelope, violations: &[Violation], kind: &str) -> dead_letter::ActiveModel {
    let first = &violations[0];
    let now = Utc::now();
    // An event refused for holding NUL characters cannot go into jsonb or text columns:
    // it is kept byte for byte in `raw` instead.
    let storable = violations.iter().all(|v| v.validator != STORAGE_RULE);
    let text = |s: &str| (!s.contains('\0')).then(|| s.to_owned());
    let (payload, raw) = if storable {
        (serde_json::to_value(envelope).ok(), None)
    } else {
        (None, Some(envelope.to_json()))
    };
    dead_letter::ActiveModel {
        id: ActiveValue::Set(Uuid::now_v7()),
        kind: ActiveValue::Set(kind.into()),
        app_id: ActiveValue::Set(text(&envelope.app_id)),
        event_id: ActiveValue::Set(Some(envelope.event.id)),
        source: ActiveValue::Set(text(&envelope.source.to_string())),
        category: ActiveValue::Set(text(&envelope.event.category)),
        name: ActiveValue::Set(text(&envelope.event.name)),
        validator: ActiveValue::Set(Some(first.validator.clone())),
        field: ActiveValue::Set(Some(first.field.clone())),
        message: ActiveValue::Set(first.message.clone()),
        reasons: ActiveValue::Set(serde_json::to_value(violations).unwrap_or_default()),
        payload: ActiveValue::Set(payload),
        raw: ActiveValue::Set(raw),
        attempts: ActiveValue::NotSet,
        first_seen: ActiveValue::Set(now),
        last_seen: ActiveValue::Set(now),
    }
}

/// The dead letter of one envelope that could not be read, kept byte for byte with whatever
/// provenance could be read, so `/events/{id}/status` answers for it.
fn bad_envelope(bad: BadEnvelope) -> dead_letter::ActiveModel {
    tracing::warn!(
        app_id = bad.app_id.as_deref().unwrap_or("-"),
        event_id = ?bad.event_id,
        reason = %bad.reason,
        "undecodable envelope"
    );
    let mut row = undecodable(bad.raw.as_bytes(), &bad.reason);
    let text = |s: Option<String>| s.filter(|s| !s.contains('\0'));
    row.app_id = ActiveValue::Set(text(bad.app_id));
    row.source = ActiveValue::Set(text(bad.source));
    row.event_id = ActiveValue::Set(bad.event_id);
    row.message = ActiveValue::Set(format!("cannot decode the event: {}", bad.reason));
    row
}

fn undecodable(body: &[u8], reason: &str) -> dead_letter::ActiveModel {
    tracing::warn!(bytes = body.len(), reason, "undecodable message");
    let now = Utc::now();
    // Keep the body as JSON too when it is JSON (a wrong shape rather than garbage); jsonb
    // refuses NUL characters, so such bodies stay in `raw` only.
    let payload = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| !storable::has_nul(v));
    dead_letter::ActiveModel {
        id: ActiveValue::Set(Uuid::now_v7()),
        kind: ActiveValue::Set(dead_letter::KIND_UNDECODABLE.into()),
        app_id: ActiveValue::Set(None),
        event_id: ActiveValue::Set(None),
        source: ActiveValue::Set(None),
        category: ActiveValue::Set(None),
        name: ActiveValue::Set(None),
        validator: ActiveValue::Set(Some("envelope".into())),
        field: ActiveValue::Set(None),
        message: ActiveValue::Set(format!("cannot decode the message: {reason}")),
        reasons: ActiveValue::Set(Value::Array(Vec::new())),
        payload: ActiveValue::Set(payload),
        raw: ActiveValue::Set(Some(body.to_vec())),
        attempts: ActiveValue::NotSet,
        first_seen: ActiveValue::Set(now),
        last_seen: ActiveValue::Set(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(data: Value, timestamp: &str) -> Envelope {
        serde_json::from_value(json!({
            "app_id": "app",
            "source": "http",
            "received_at": "2024-01-01T00:00:00Z",
            "event": {
                "id": "0190a5a0-0000-7000-8000-000000000001",
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "category": "c", "name": "n", "data": data, "timestamp": timestamp
            }
        }))
        .expect("envelope")
    }

    #[test]
    fn nul_characters_and_far_years_are_refused_by_pointer() {
        let ok = envelope(json!({"a": ["x"]}), "2024-01-01T00:00:00Z");
        assert!(unstorable(&ok).is_empty());
        let nul = envelope(json!({"a": ["x", "b\u{0}"]}), "2024-01-01T00:00:00Z");
        assert_eq!(unstorable(&nul)[0].field, "/data/a/1");
        let key = envelope(json!({"k\u{0}": 1}), "2024-01-01T00:00:00Z");
        assert_eq!(unstorable(&key)[0].field, "/data/k\\u0000");
    }
}
