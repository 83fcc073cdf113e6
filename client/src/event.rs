//! The event a client sends: the wire shape of `POST /events` (see api/openapi.json).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// One event. Its `id` is assigned (UUIDv7) by the client before the first attempt when it
/// has none, so every retry carries the same id and the store keeps it once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    pub session_id: Uuid,
    pub category: String,
    pub name: String,
    pub data: Map<String, Value>,
    /// RFC 3339, or the form `YYYY-MM-DD HH:MM:SS[.f]` (UTC) the api also reads.
    pub timestamp: String,
}

impl Event {
    /// An event happening now, with empty `data`.
    pub fn new(session_id: Uuid, category: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: None,
            session_id,
            category: category.into(),
            name: name.into(),
            data: Map::new(),
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }

    /// Sets `data` from a JSON object (any other value is kept under the key `value`).
    #[must_use]
    pub fn data(mut self, data: Value) -> Self {
        self.data = match data {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_owned(), other)]),
        };
        self
    }

    /// Sets when the event happened.
    #[must_use]
    pub fn at(mut self, timestamp: DateTime<Utc>) -> Self {
        self.timestamp = timestamp.to_rfc3339_opts(SecondsFormat::Micros, true);
        self
    }

    /// Uses this id (a retry of an event sent before must reuse its id).
    #[must_use]
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// The event's id, assigning a UUIDv7 first if it has none.
    pub fn assign_id(&mut self) -> Uuid {
        *self.id.get_or_insert_with(Uuid::now_v7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_id_is_assigned_once_and_kept() {
        let mut event = Event::new(Uuid::now_v7(), "c", "n");
        let id = event.assign_id();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(event.assign_id(), id);
        let wire = serde_json::to_value(&event).expect("json");
        assert_eq!(wire["id"], id.to_string());
    }

    #[test]
    fn data_is_an_object() {
        let event = Event::new(Uuid::now_v7(), "c", "n").data(json!([1]));
        assert_eq!(Value::Object(event.data), json!({"value": [1]}));
    }
}
