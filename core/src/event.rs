//! The event: its wire shape (`EventIn`, what clients post) and its domain shape (`Event`,
//! what travels on the queue and is stored). Parsing happens once, at the edge.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::storable::{self, Unstorable};
use crate::timestamp::parse_timestamp;

/// Longest `category` or `name`, in characters.
pub const MAX_LABEL_CHARS: u64 = 128;

/// An event exactly as a client sends it (`POST /events`).
#[derive(Debug, Clone, Deserialize, Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventIn {
    /// Chosen by the client for idempotent retries; assigned (UUIDv7) when absent or null.
    #[serde(default)]
    pub id: Option<Uuid>,
    pub session_id: Uuid,
    #[validate(length(min = 1, max = MAX_LABEL_CHARS), custom(function = not_blank))]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"\S",
            example = "page interaction"
        )
    )]
    pub category: String,
    #[validate(length(min = 1, max = MAX_LABEL_CHARS), custom(function = not_blank))]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"\S",
            example = "pageview"
        )
    )]
    pub name: String,
    /// Free-form JSON object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object, example = json!({"host": "www.consumeraffairs.com", "path": "/"})))]
    pub data: Map<String, Value>,
    /// RFC 3339 or the seed clients' `YYYY-MM-DD HH:MM:SS[.f][offset]`; see [`crate::timestamp`].
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "2021-01-01 09:15:27.243860",
            pattern = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$"
        )
    )]
    pub timestamp: String,
}

/// A well-formed event: ids are UUIDs, labels are bounded, the timestamp is UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    pub session_id: Uuid,
    pub category: String,
    pub name: String,
    pub data: Map<String, Value>,
    #[serde(with = "rfc3339_micros")]
    pub timestamp: DateTime<Utc>,
}

/// A field of an incoming event that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EventError {
    /// The top-level field at fault (`data`, `timestamp`).
    pub field: String,
    /// Where exactly, as a JSON pointer into the event (`/data/k/1`, `/timestamp`).
    pub pointer: String,
    pub message: String,
}

impl EventIn {
    /// Checks the fields and turns the wire event into a domain event, assigning a UUIDv7
    /// id when the client gave none.
    pub fn into_event(self) -> Result<Event, EventError> {
        if let Err(errors) = self.validate() {
            return Err(first_error(&errors));
        }
        let timestamp = parse_timestamp(&self.timestamp).map_err(|e| EventError {
            field: "timestamp".into(),
            pointer: "/timestamp".into(),
            message: e.to_string(),
        })?;
        let event = Event {
            id: self.id.unwrap_or_else(Uuid::now_v7),
            session_id: self.session_id,
            category: self.category,
            name: self.name,
            data: self.data,
            timestamp,
        };
        // A 202 promises a row or a dead letter: what the database cannot hold is refused here.
        match storable::check_event(&event).into_iter().next() {
            None => Ok(event),
            Some(bad) => Err(EventError::unstorable(&bad)),
        }
    }
}

impl EventError {
    /// The edge's form of a storage constraint: the top-level field, the pointer in the message.
    fn unstorable(bad: &Unstorable) -> Self {
        let field = bad.pointer.trim_start_matches('/');
        let field = field.split('/').next().unwrap_or(field).to_owned();
        let message = if bad.pointer == format!("/{field}") {
            bad.message.clone()
        } else {
            format!("{} (at {})", bad.message, bad.pointer)
        };
        Self {
            field,
            pointer: bad.pointer.clone(),
            message,
        }
    }
}

fn not_blank(value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new("blank").with_message("must not be blank".into()));
    }
    Ok(())
}

fn first_error(errors: &validator::ValidationErrors) -> EventError {
    let mut fields: Vec<_> = errors.field_errors().into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let Some((field, errs)) = fields.into_iter().next() else {
        return EventError {
            field: String::new(),
            pointer: String::new(),
            message: errors.to_string(),
        };
    };
    let message = match errs.first() {
        Some(e) if e.code == "length" => {
            format!("must be between 1 and {MAX_LABEL_CHARS} characters")
        }
        Some(e) => e
            .message
            .as_ref()
            .map_or_else(|| e.code.to_string(), ToString::to_string),
        None => "invalid".to_owned(),
    };
    EventError {
        field: field.to_string(),
        pointer: format!("/{field}"),
        message,
    }
}

/// Timestamps on the wire and in the envelope: RFC 3339, UTC, microseconds (PostgreSQL's
/// precision, so a stored event compares equal to the one sent).
mod rfc3339_micros {
    use super::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(overrides: Value) -> EventIn {
        let mut body = json!({
            "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
            "category": "page interaction",
            "name": "pageview",
            "data": {"host": "www.consumeraffairs.com", "path": "/"},
            "timestamp": "2021-01-01 09:15:27.243860"
        });
        if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(body).expect("wire shape")
    }

    #[test]
    fn a_seed_event_becomes_a_domain_event_with_a_v7_id() {
        let event = wire(json!({})).into_event().expect("valid");
        assert_eq!(event.id.get_version_num(), 7);
        assert_eq!(event.category, "page interaction");
        assert_eq!(
            event.timestamp.to_rfc3339(),
            "2021-01-01T09:15:27.243860+00:00"
        );
    }

    #[test]
    fn a_client_id_is_kept() {
        let id = Uuid::new_v4();
        let event = wire(json!({"id": id})).into_event().expect("valid");
        assert_eq!(event.id, id);
    }

    #[test]
    fn each_bad_field_is_named() {
        let long = "x".repeat(MAX_LABEL_CHARS as usize + 1);
        let cases = [
            (json!({"category": ""}), "category"),
            (json!({"category": "   "}), "category"),
            (json!({"name": long}), "name"),
            (json!({"timestamp": "tomorrow"}), "timestamp"),
        ];
        for (overrides, field) in cases {
            let err = wire(overrides.clone()).into_event().expect_err("invalid");
            assert_eq!(err.field, field, "{overrides}");
        }
    }

    #[test]
    fn values_the_database_cannot_hold_are_refused_at_the_edge() {
        let mut deep = json!(1);
        for _ in 0..storable::MAX_DATA_DEPTH {
            deep = json!([deep]);
        }
        let cases = [
            (
                json!({"timestamp": "9999-12-31T23:59:59-00:01"}),
                "timestamp",
            ),
            (
                json!({"timestamp": "0000-01-01T00:00:00+00:01"}),
                "timestamp",
            ),
            (json!({"category": "a\u{0}b"}), "category"),
            (json!({"data": {"k": ["x", "\u{0}"]}}), "data"),
            (json!({"data": {"deep": deep}}), "data"),
        ];
        for (overrides, field) in cases {
            let err = wire(overrides.clone())
                .into_event()
                .expect_err("unstorable");
            assert_eq!(err.field, field, "{overrides}");
        }
        let nul = wire(json!({"data": {"k": ["x", "\u{0}"]}})).into_event();
        let nul = nul.expect_err("nul");
        assert!(nul.message.contains("/data/k/1"));
        assert_eq!(nul.pointer, "/data/k/1");
    }

    #[test]
    fn labels_at_the_limit_are_accepted() {
        let at_limit = "é".repeat(MAX_LABEL_CHARS as usize);
        assert!(wire(json!({"name": at_limit})).into_event().is_ok());
    }

    #[test]
    fn domain_event_round_trips_with_microseconds() {
        let event = wire(json!({})).into_event().expect("valid");
        let json = serde_json::to_value(&event).expect("serialize");
        assert_eq!(json["timestamp"], "2021-01-01T09:15:27.243860Z");
        let back: Event = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, event);
    }
}
