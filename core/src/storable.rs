//! The one definition of a storable event: what PostgreSQL (`text`, `jsonb`, `timestamptz`)
//! and the worker's decoder can hold. The edge refuses anything else with 422, so a 202 is
//! never followed by a row the database refuses; the worker checks again (messages from other
//! producers or older versions) and dead-letters under [`STORAGE_RULE`].

use serde_json::{Map, Value};

use crate::envelope::Envelope;
use crate::event::Event;
use crate::timestamp::within_years;

/// Validator name recorded on dead letters refused by the storage constraints themselves.
pub const STORAGE_RULE: &str = "storable";

/// Deepest nesting of `data` (the object itself is depth 1). The worker decodes envelopes with
/// serde_json's recursion limit of 128, and an envelope wraps `data` two levels deeper than a
/// request body does: 64 leaves a wide margin and is far beyond any real event's shape.
pub const MAX_DATA_DEPTH: usize = 64;

/// One reason a value cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstorable {
    /// JSON pointer into the envelope's event (`/data/a/1`, `/timestamp`) or `/app_id`.
    pub pointer: String,
    pub message: String,
}

const NUL: &str = "contains a NUL character, which cannot be stored";

/// Every storage constraint the event breaks (empty when it is storable).
pub fn check_event(event: &Event) -> Vec<Unstorable> {
    let mut out = Vec::new();
    for (pointer, text) in [("/category", &event.category), ("/name", &event.name)] {
        if text.contains('\0') {
            out.push(unstorable(pointer, NUL));
        }
    }
    match scan_map(&event.data, 1) {
        Scan::Fine => {}
        Scan::Nul(reversed) => out.push(unstorable(&pointer("/data", reversed), NUL)),
        Scan::TooDeep => out.push(unstorable(
            "/data",
            &format!("nests deeper than {MAX_DATA_DEPTH} levels"),
        )),
    }
    if let Err(e) = within_years(event.timestamp) {
        out.push(unstorable("/timestamp", &e.to_string()));
    }
    out
}

/// [`check_event`] plus the envelope's own text (application and source).
pub fn check_envelope(envelope: &Envelope) -> Vec<Unstorable> {
    let mut out = Vec::new();
    if envelope.app_id.contains('\0') {
        out.push(unstorable("/app_id", NUL));
    }
    if envelope.source.to_string().contains('\0') {
        out.push(unstorable("/source", NUL));
    }
    out.extend(check_event(&envelope.event));
    out
}

/// Whether `value` (a whole JSON document) holds a NUL character in a string or key, which
/// `jsonb` refuses.
pub fn has_nul(value: &Value) -> bool {
    matches!(scan(value, 1), Scan::Nul(_))
}

fn unstorable(pointer: &str, message: &str) -> Unstorable {
    Unstorable {
        pointer: pointer.to_owned(),
        message: message.to_owned(),
    }
}

/// What a scan of a JSON value found first. The path is collected in reverse and only along
/// the way to a NUL, so the common case allocates nothing.
enum Scan {
    Fine,
    Nul(Vec<String>),
    TooDeep,
}

fn scan(value: &Value, depth: usize) -> Scan {
    match value {
        Value::String(s) if s.contains('\0') => Scan::Nul(Vec::new()),
        Value::Array(items) => {
            if depth > MAX_DATA_DEPTH {
                return Scan::TooDeep;
            }
            for (i, item) in items.iter().enumerate() {
                match scan(item, depth + 1) {
                    Scan::Fine => {}
                    Scan::Nul(mut path) => {
                        path.push(i.to_string());
                        return Scan::Nul(path);
                    }
                    Scan::TooDeep => return Scan::TooDeep,
                }
            }
            Scan::Fine
        }
        Value::Object(map) => scan_map(map, depth),
        _ => Scan::Fine,
    }
}

fn scan_map(map: &Map<String, Value>, depth: usize) -> Scan {
    if depth > MAX_DATA_DEPTH {
        return Scan::TooDeep;
    }
    for (key, value) in map {
        // The pointer is stored as text, so a NUL in a key is written escaped.
        let token = || pointer_token(key).replace('\0', "\\u0000");
        if key.contains('\0') {
            return Scan::Nul(vec![token()]);
        }
        match scan(value, depth + 1) {
            Scan::Fine => {}
            Scan::Nul(mut path) => {
                path.push(token());
                return Scan::Nul(path);
            }
            Scan::TooDeep => return Scan::TooDeep,
        }
    }
    Scan::Fine
}

fn pointer(at: &str, reversed: Vec<String>) -> String {
    reversed.iter().rev().fold(at.to_owned(), |mut p, token| {
        p.push('/');
        p.push_str(token);
        p
    })
}

/// A key escaped as a JSON pointer token (RFC 6901: `~` is `~0`, `/` is `~1`).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: Value, timestamp: &str) -> Event {
        serde_json::from_value(json!({
            "id": "0190a5a0-0000-7000-8000-000000000001",
            "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
            "category": "c", "name": "n", "data": data, "timestamp": timestamp
        }))
        .expect("event")
    }

    fn nested(depth: usize) -> Value {
        // `data` itself is depth 1: `depth - 1` arrays inside it.
        let mut v = json!(1);
        for _ in 1..depth {
            v = json!([v]);
        }
        json!({ "x": v })
    }

    #[test]
    fn nul_characters_are_refused_by_pointer() {
        let ok = event(json!({"a": ["x"]}), "2024-01-01T00:00:00Z");
        assert!(check_event(&ok).is_empty());
        let nul = event(json!({"a": ["x", "b\u{0}"]}), "2024-01-01T00:00:00Z");
        assert_eq!(check_event(&nul)[0].pointer, "/data/a/1");
        let key = event(json!({"k\u{0}/": 1}), "2024-01-01T00:00:00Z");
        assert_eq!(check_event(&key)[0].pointer, "/data/k\\u0000~1");
    }

    #[test]
    fn data_deeper_than_the_limit_is_refused_and_the_limit_itself_is_not() {
        let at_limit = event(nested(MAX_DATA_DEPTH), "2024-01-01T00:00:00Z");
        assert!(check_event(&at_limit).is_empty());
        let deeper = event(nested(MAX_DATA_DEPTH + 1), "2024-01-01T00:00:00Z");
        assert_eq!(check_event(&deeper)[0].pointer, "/data");
    }

    #[test]
    fn years_outside_1_to_9999_in_utc_are_refused() {
        // What `9999-12-31T23:59:59-00:01` and `0000-01-01T00:00:00+00:01` become in UTC.
        for (y, m, d) in [(10000, 1, 1), (-1, 12, 31)] {
            let mut e = event(json!({}), "2024-01-01T00:00:00Z");
            e.timestamp = chrono::NaiveDate::from_ymd_opt(y, m, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date")
                .and_utc();
            assert_eq!(check_event(&e)[0].pointer, "/timestamp", "{y}");
        }
        for ts in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            assert!(check_event(&event(json!({}), ts)).is_empty(), "{ts}");
        }
    }
}
