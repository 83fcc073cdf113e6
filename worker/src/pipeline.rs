//! Judging message bodies: decode each envelope and run the validators. No broker and no
//! database types here: the verdicts go to storage, which builds the rows.

use eye_core::storable::{self, STORAGE_RULE};
use eye_core::{BadEnvelope, Envelope, Message};

use crate::validation::{Subject, ValidatorSet, Violation};

/// Decodes and judges messages.
#[derive(Debug)]
pub struct Pipeline {
    validators: ValidatorSet,
}

/// What became of one envelope (or of a body that holds none).
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Valid: store it. `warnings` are the rules in `warn` mode it broke, recorded beside it.
    Store {
        envelope: Envelope,
        warnings: Vec<Violation>,
    },
    /// Refused by a validator or by the storage constraints: a dead letter.
    Refuse {
        envelope: Envelope,
        violations: Vec<Violation>,
    },
    /// Not an envelope this code can read: a dead letter of the bytes, with whatever
    /// provenance could be read.
    Undecodable(Undecodable),
}

/// A message or envelope that could not be decoded.
#[derive(Debug, Clone)]
pub struct Undecodable {
    pub raw: Vec<u8>,
    pub reason: String,
    pub app_id: Option<String>,
    pub source: Option<String>,
    pub event_id: Option<uuid::Uuid>,
}

impl Verdict {
    /// What the tombstones' check needs of it; None for bytes that are no envelope.
    pub fn arrival(&self) -> Option<eye_core::erasure::Arrival<'_>> {
        match self {
            Verdict::Store { envelope, .. } | Verdict::Refuse { envelope, .. } => {
                Some(eye_core::erasure::Arrival {
                    app_id: &envelope.app_id,
                    session_id: envelope.event.session_id,
                    category: &envelope.event.category,
                    name: &envelope.event.name,
                    timestamp: envelope.event.timestamp,
                })
            }
            Verdict::Undecodable(_) => None,
        }
    }

    /// Rows this verdict writes (an event with warnings is two).
    pub fn rows(&self) -> usize {
        match self {
            Verdict::Store { warnings, .. } if !warnings.is_empty() => 2,
            _ => 1,
        }
    }
}

/// The verdicts of a batch of messages, in delivery order.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub verdicts: Vec<Verdict>,
    rows: usize,
}

impl Batch {
    /// Rows this batch will write.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn push(&mut self, verdict: Verdict) {
        self.rows += verdict.rows();
        self.verdicts.push(verdict);
    }
}

impl Pipeline {
    pub fn new(validators: ValidatorSet) -> Self {
        Self { validators }
    }

    /// Judges one message body (one or more events) into `batch`.
    pub fn judge(&self, body: &[u8], batch: &mut Batch) {
        match Message::decode(body) {
            Ok(envelopes) => {
                for envelope in envelopes {
                    // One unreadable envelope fails alone, under its own application and id
                    // when they could be read; its neighbours go on.
                    let verdict = match envelope {
                        Ok(envelope) => self.judge_envelope(envelope),
                        Err(bad) => Verdict::Undecodable(bad.into()),
                    };
                    batch.push(verdict);
                }
            }
            Err(e) => batch.push(Verdict::Undecodable(Undecodable {
                raw: body.to_vec(),
                reason: e.to_string(),
                app_id: None,
                source: None,
                event_id: None,
            })),
        }
    }

    /// Judges one envelope (an imported row is judged as it is read, not from a message).
    pub fn judge_envelope(&self, envelope: Envelope) -> Verdict {
        let mut violations = unstorable(&envelope);
        let mut warnings = Vec::new();
        if violations.is_empty() {
            let judgement = self.validators.judge(&Subject {
                app_id: &envelope.app_id,
                source: &envelope.source,
                received_at: envelope.received_at,
                event: &envelope.event,
            });
            violations = judgement.refusals;
            warnings = judgement.warnings;
        }
        if violations.is_empty() {
            if let Some(first) = warnings.first() {
                // A rule in `warn` mode: the event is stored, and the violation recorded.
                metrics::counter!("eye_worker_warnings_total", "reason" => first.validator.clone())
                    .increment(1);
            }
            return Verdict::Store { envelope, warnings };
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
        Verdict::Refuse {
            envelope,
            violations,
        }
    }
}

impl From<BadEnvelope> for Undecodable {
    fn from(bad: BadEnvelope) -> Self {
        Self {
            raw: bad.raw.into_bytes(),
            reason: bad.reason,
            app_id: bad.app_id,
            source: bad.source,
            event_id: bad.event_id,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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

    #[test]
    fn a_message_of_three_envelopes_with_one_bad_gives_three_verdicts() {
        let pipeline = Pipeline::new(
            crate::validation::Registry::builtin()
                .build(&[])
                .expect("no rules"),
        );
        let good = serde_json::to_value(envelope(json!({}), "2024-01-01T00:00:00Z")).expect("json");
        let mut bad = good.clone();
        bad["event"]["timestamp"] = json!("never");
        let body = json!({"v": "1", "envelopes": [good, bad, good]}).to_string();
        let mut batch = Batch::default();
        pipeline.judge(body.as_bytes(), &mut batch);
        pipeline.judge(b"not json", &mut batch);
        let kinds: Vec<_> = batch
            .verdicts
            .iter()
            .map(|v| match v {
                Verdict::Store { .. } => "store",
                Verdict::Refuse { .. } => "refuse",
                Verdict::Undecodable(u) if u.app_id.is_some() => "bad envelope",
                Verdict::Undecodable(_) => "undecodable",
            })
            .collect();
        assert_eq!(
            kinds,
            ["store", "bad envelope", "store", "undecodable"],
            "{batch:?}"
        );
        assert_eq!(batch.len(), 4);
    }
}
