//! Accepting a batch of events (`POST /events/batch`): every event is judged on its own by
//! the single event's checks (`extract::parse`, `EventIn::into_event`: the one definition of
//! a storable event), the valid ones cost the application's quota together and are
//! published through the same group-commit publisher, and the answer comes only once the
//! broker confirmed every one of them.

pub mod body;

use body::BatchBody;
use chrono::Utc;
use eye_core::{Envelope, EventIn, Source};
use serde::Serialize;
use uuid::Uuid;

use crate::apps::limits::Quota;
use crate::auth::{Caller, SCOPE_EVENTS_WRITE};
use crate::error::ApiError;
use crate::extract;
use crate::state::AppState;

/// The answer to a batch: one result per event, in input order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// Events confirmed by the broker (they will be stored or dead-lettered).
    pub accepted: usize,
    /// Events refused at the edge (never published).
    pub refused: usize,
    /// `results[i]` is the fate of the batch's `i`-th event (for NDJSON, its `i`-th non-blank
    /// line).
    pub results: Vec<ItemResult>,
}

/// One event's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemResult {
    /// Confirmed by the broker; `id` is the event's (the client's, or one assigned).
    Accepted { id: Uuid },
    /// Refused: `code` as in single-event errors (`invalid_field`, `malformed_json`,
    /// `payload_too_large`), `field` a JSON pointer into the event when one is to blame.
    Refused {
        code: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false, example = "/timestamp")]
        field: Option<String>,
        message: String,
    },
}

/// Judges, charges and publishes the batch's events for `caller`. Ok once the broker
/// confirmed every valid event; a publish failure fails the whole batch (503), saying
/// whether any event may have been stored and with which ids.
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    batch: &BatchBody,
    request_id: Option<String>,
) -> Result<(BatchAnswer, Option<Quota>), ApiError> {
    caller.require(SCOPE_EVENTS_WRITE)?;
    let items = body::split(&batch.bytes, batch.format, &state.batch)?;
    let received_at = Utc::now();
    let per_event = state.body_limit.0;
    let judged: Vec<Result<Envelope, ItemResult>> = items
        .iter()
        .map(|item| {
            judge(item, per_event).map(|event| Envelope {
                app_id: caller.app_id.clone(),
                source: Source::Http,
                received_at,
                request_id: request_id.clone(),
                event,
            })
        })
        .collect();
    let valid: Vec<&Envelope> = judged.iter().filter_map(|j| j.as_ref().ok()).collect();
    let refused = judged.len() - valid.len();
    if refused > 0 {
        metrics::counter!("eye_events_refused_total", "reason" => "invalid")
            .increment(refused as u64);
    }
    // After the checks, so that refused events do not spend the application's quota.
    let quota = match u32::try_from(valid.len()) {
        Ok(0) => None,
        Ok(n) => Some(caller.charge_events(n).inspect_err(|_| {
            metrics::counter!("eye_events_refused_total", "reason" => "rate_limited")
                .increment(valid.len() as u64);
        })?),
        Err(_) => return Err(ApiError::TooManyEvents { limit: u32::MAX }),
    };
    let outcomes = state.publisher.publish_all(&valid).await;
    if let Some(error) = publish_failure(state, &judged, &outcomes) {
        metrics::counter!("eye_events_refused_total", "reason" => "unavailable")
            .increment(valid.len() as u64);
        return Err(error);
    }
    metrics::counter!("eye_events_accepted_total").increment(valid.len() as u64);
    state
        .auth
        .usage
        .accepted(&caller.app_id, valid.len() as u64);
    let results: Vec<ItemResult> = judged
        .into_iter()
        .map(|j| match j {
            Ok(envelope) => ItemResult::Accepted {
                id: envelope.event.id,
            },
            Err(refusal) => refusal,
        })
        .collect();
    Ok((
        BatchAnswer {
            accepted: results.len() - refused,
            refused,
            results,
        },
        quota,
    ))
}

/// One event of a batch through the single event's checks: its size, its JSON shape, its
/// fields and what the database can hold.
fn judge(item: &[u8], limit: u32) -> Result<eye_core::Event, ItemResult> {
    if item.len() > limit as usize {
        return Err(ItemResult::Refused {
            code: "payload_too_large",
            field: None,
            message: format!("the event is larger than the {limit}-byte limit"),
        });
    }
    let event: EventIn = extract::parse(item).map_err(|e| match e {
        ApiError::InvalidField { field, message } => ItemResult::Refused {
            code: "invalid_field",
            field: Some(pointer_of(&field)),
            message,
        },
        other => ItemResult::Refused {
            code: "malformed_json",
            field: None,
            message: other.to_string(),
        },
    })?;
    event.into_event().map_err(|e| ItemResult::Refused {
        code: "invalid_field",
        field: Some(e.pointer),
        message: e.message,
    })
}

/// serde_path_to_error's path (`data.a[1]`) as a JSON pointer (`/data/a/1`).
fn pointer_of(path: &str) -> String {
    let mut pointer = String::with_capacity(path.len() + 1);
    for segment in path.split('.') {
        let mut parts = segment.split('[');
        if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
        for index in parts {
            pointer.push('/');
            pointer.push_str(index.trim_end_matches(']'));
        }
    }
    pointer
}

/// The 503 for a batch whose publish failed, if it did: "may have been stored" with the ids
/// to retry with when any message may have reached the broker, else "not stored".
fn publish_failure(
    state: &AppState,
    judged: &[Result<Envelope, ItemResult>],
    outcomes: &[Result<(), crate::publisher::PublishError>],
) -> Option<ApiError> {
    let first = outcomes.iter().find_map(|o| o.as_ref().err())?;
    let retry_after = state.retry_after_secs;
    let may_be_stored = outcomes
        .iter()
        .any(|o| o.as_ref().map_or_else(|e| e.may_be_stored(), |()| true));
    if !may_be_stored {
        return Some(ApiError::Unavailable {
            reason: format!(
                "the event queue is unavailable: {first}; no event of the batch was stored"
            ),
            retry_after,
        });
    }
    let ids = judged
        .iter()
        .map(|j| j.as_ref().ok().map(|e| e.event.id))
        .collect();
    Some(ApiError::BatchMayBeStored {
        reason: first.to_string(),
        ids,
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_json_pointers() {
        for (path, pointer) in [
            ("session_id", "/session_id"),
            ("data", "/data"),
            ("data.a[1].b", "/data/a/1/b"),
            ("a/b", "/a~1b"),
        ] {
            assert_eq!(pointer_of(path), pointer, "{path}");
        }
    }

    #[test]
    fn each_event_is_judged_on_its_own_with_the_field_as_a_pointer() {
        let ok = br#"{"session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","category":"c","name":"n","data":{},"timestamp":"2021-01-01 09:15:27"}"#;
        assert!(judge(ok, 1024).is_ok());
        let bad_time = String::from_utf8_lossy(ok).replace("2021-01-01 09:15:27", "soon");
        let nul = String::from_utf8_lossy(ok).replace(r#""data":{}"#, r#""data":{"k":["\u0000"]}"#);
        let cases: [(&[u8], &str, Option<&str>); 5] = [
            (bad_time.as_bytes(), "invalid_field", Some("/timestamp")),
            (nul.as_bytes(), "invalid_field", Some("/data/k/0")),
            (br#"{"category":"c"}"#, "invalid_field", Some("/session_id")),
            (b"[1]", "malformed_json", None),
            (ok, "payload_too_large", None),
        ];
        for (i, (item, code, field)) in cases.into_iter().enumerate() {
            let limit = if i == 4 { 10 } else { 1024 };
            match judge(item, limit) {
                Err(ItemResult::Refused {
                    code: c, field: f, ..
                }) => {
                    assert_eq!((c, f.as_deref()), (code, field), "case {i}");
                }
                other => panic!("case {i}: {other:?}"),
            }
        }
    }
}
