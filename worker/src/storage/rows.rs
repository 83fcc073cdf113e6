//! From verdicts to sea-orm rows: events, dead letters, and the projections of stored events
//! (the provider plan read model).

use std::collections::HashMap;

use chrono::Utc;
use eye_core::Envelope;
use eye_core::entity::dead_letter;
use eye_core::storable::{self, STORAGE_RULE};
use sea_orm::ActiveValue;
use serde_json::Value;
use uuid::Uuid;

use super::Projection;
use crate::pipeline::{Undecodable, Verdict};
use crate::validation::Violation;

/// Validator name on the dead letter of an event the database itself refused.
pub const DATABASE_RULE: &str = "database";

/// The rows of a slice of verdicts.
#[derive(Debug)]
pub struct Rows<'a> {
    /// The envelopes of the events to store.
    pub events: Vec<&'a Envelope>,
    pub dead_letters: Vec<dead_letter::ActiveModel>,
    /// For each projection, the stored events it follows.
    pub projected: Vec<Vec<&'a Envelope>>,
}

impl<'a> Rows<'a> {
    pub fn of(verdicts: &[&'a Verdict], projections: &[std::sync::Arc<dyn Projection>]) -> Self {
        let mut rows = Rows {
            events: Vec::with_capacity(verdicts.len()),
            dead_letters: Vec::new(),
            projected: vec![Vec::new(); projections.len()],
        };
        for verdict in verdicts.iter().copied() {
            match verdict {
                Verdict::Store { envelope, warnings } => {
                    if !warnings.is_empty() {
                        rows.dead_letters.push(refused(
                            envelope,
                            warnings,
                            dead_letter::KIND_WARNING,
                        ));
                    }
                    for (projection, followed) in projections.iter().zip(&mut rows.projected) {
                        if projection.follows(envelope) {
                            followed.push(envelope);
                        }
                    }
                    rows.events.push(envelope);
                }
                Verdict::Refuse {
                    envelope,
                    violations,
                } => {
                    rows.dead_letters
                        .push(refused(envelope, violations, dead_letter::KIND_INVALID))
                }
                Verdict::Undecodable(bad) => rows.dead_letters.push(undecodable(bad)),
            }
        }
        rows.dead_letters = unique_dead_letters(std::mem::take(&mut rows.dead_letters));
        rows
    }
}

/// The dead letter of a verdict the database refused to store, with its message. `minimal`
/// keeps only what cannot fail (the bytes, the ids, a short message): the last resort when
/// even the full dead letter is refused.
pub fn refused_by_database(
    verdict: &Verdict,
    message: &str,
    minimal: bool,
) -> dead_letter::ActiveModel {
    let message = message.replace('\0', "\\u0000");
    let violation = Violation {
        validator: DATABASE_RULE.into(),
        field: String::new(),
        message: format!("the database refused the event: {message}"),
    };
    let mut row = match (verdict, minimal) {
        (Verdict::Store { envelope, .. } | Verdict::Refuse { envelope, .. }, false) => refused(
            envelope,
            std::slice::from_ref(&violation),
            dead_letter::KIND_INVALID,
        ),
        (Verdict::Undecodable(bad), false) => undecodable(bad),
        (Verdict::Store { envelope, .. } | Verdict::Refuse { envelope, .. }, true) => {
            // An application id that long is no real one; the index would refuse it.
            let app_id = Some(envelope.app_id.clone()).filter(|a| a.len() <= 200);
            let mut row = undecodable(&Undecodable {
                raw: envelope.to_json(),
                reason: violation.message.clone(),
                app_id,
                source: None,
                event_id: Some(envelope.event.id),
            });
            row.kind = ActiveValue::Set(dead_letter::KIND_INVALID.into());
            row.validator = ActiveValue::Set(Some(DATABASE_RULE.into()));
            row
        }
        (Verdict::Undecodable(bad), true) => undecodable(&Undecodable {
            raw: bad.raw.clone(),
            reason: violation.message.clone(),
            app_id: None,
            source: None,
            event_id: None,
        }),
    };
    if minimal {
        // Short, plain text only: nothing the database can refuse.
        let short: String = violation.message.chars().take(500).collect();
        row.message = ActiveValue::Set(short);
        row.reasons = ActiveValue::Set(Value::Array(Vec::new()));
    }
    row.attempts = ActiveValue::Set(1);
    row
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

/// The dead letter of bytes that are not an envelope, kept byte for byte with whatever
/// provenance could be read, so `/events/{id}/status` answers for them when it could.
fn undecodable(bad: &Undecodable) -> dead_letter::ActiveModel {
    tracing::warn!(
        bytes = bad.raw.len(),
        app_id = bad.app_id.as_deref().unwrap_or("-"),
        event_id = ?bad.event_id,
        reason = %bad.reason,
        "undecodable"
    );
    let now = Utc::now();
    // Keep the body as JSON too when it is JSON (a wrong shape rather than garbage); jsonb
    // refuses NUL characters, so such bodies stay in `raw` only.
    let payload = serde_json::from_slice::<Value>(&bad.raw)
        .ok()
        .filter(|v| !storable::has_nul(v));
    let text = |s: &Option<String>| s.clone().filter(|s| !s.contains('\0'));
    let what = if bad.event_id.is_some() {
        "event"
    } else {
        "message"
    };
    dead_letter::ActiveModel {
        id: ActiveValue::Set(Uuid::now_v7()),
        kind: ActiveValue::Set(dead_letter::KIND_UNDECODABLE.into()),
        app_id: ActiveValue::Set(text(&bad.app_id)),
        event_id: ActiveValue::Set(bad.event_id),
        source: ActiveValue::Set(text(&bad.source)),
        category: ActiveValue::Set(None),
        name: ActiveValue::Set(None),
        validator: ActiveValue::Set(Some("envelope".into())),
        field: ActiveValue::Set(None),
        message: ActiveValue::Set(format!(
            "cannot decode the {what}: {}",
            bad.reason.replace('\0', "\\u0000")
        )),
        reasons: ActiveValue::Set(Value::Array(Vec::new())),
        payload: ActiveValue::Set(payload),
        raw: ActiveValue::Set(Some(bad.raw.clone())),
        attempts: ActiveValue::NotSet,
        first_seen: ActiveValue::Set(now),
        last_seen: ActiveValue::Set(now),
    }
}

/// PostgreSQL refuses an upsert that touches one row twice, so a batch holding the same
/// refused event more than once (a client retry, a redelivery) keeps its last copy, with
/// `attempts` counting them all.
fn unique_dead_letters(rows: Vec<dead_letter::ActiveModel>) -> Vec<dead_letter::ActiveModel> {
    let mut index: HashMap<(String, Uuid), usize> = HashMap::new();
    let mut out: Vec<dead_letter::ActiveModel> = Vec::with_capacity(rows.len());
    for mut row in rows {
        let key = key_of(&row);
        if let Some(&i) = key.as_ref().and_then(|k| index.get(k)) {
            let seen = out[i].attempts.try_as_ref().copied().unwrap_or(1);
            row.attempts = ActiveValue::Set(seen + 1);
            out[i] = row;
        } else {
            if let Some(k) = key {
                index.insert(k, out.len());
            }
            row.attempts = ActiveValue::Set(1);
            out.push(row);
        }
    }
    out
}

fn key_of(row: &dead_letter::ActiveModel) -> Option<(String, Uuid)> {
    match (row.app_id.try_as_ref(), row.event_id.try_as_ref()) {
        (Some(Some(app)), Some(Some(id))) => Some((app.clone(), *id)),
        _ => None,
    }
}
