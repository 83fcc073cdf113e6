//! The records of a JSON API provider (JSONPlaceholder's `/posts`, `/comments`, `/users`):
//! one item of a resource, keyed by (provider, resource, remote id), versioned by the content
//! hash of the record as the remote sent it. A record gone from the remote becomes a
//! removal (`removed`), never a deletion.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::fields::{MAX_ID_BYTES, text_problem};
use super::{NAMESPACE, hex};

/// Event name of a record's version (new or changed content, or its return after removal).
pub const ITEM_NAME: &str = "record";
/// Event name of a record gone from the remote.
pub const REMOVED_NAME: &str = "record_removed";
/// The content hash a removed record is kept under in the fetcher's hash table.
pub const REMOVED_HASH: &str = "removed";
/// Largest record accepted, serialized, in bytes (a queue message carries up to 100).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// One record of a resource, or its removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub resource: String,
    /// The record's `id`, as text (JSONPlaceholder's are numbers).
    pub remote_id: String,
    /// The record it belongs to (a comment's `postId`), as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// True for a removal; `record` is then null.
    #[serde(default)]
    pub removed: bool,
    /// The record as the remote sent it.
    #[serde(default)]
    pub record: Value,
    /// The hash of the version this one follows (None for the first): set by the fetcher
    /// when it publishes, and part of the event id, so a record that returns with an
    /// earlier content is a new event, while a republished one keeps its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
}

impl ItemRecord {
    /// A version of a record.
    pub fn version(
        resource: &str,
        remote_id: String,
        parent_id: Option<String>,
        record: Value,
    ) -> Self {
        Self {
            resource: resource.to_owned(),
            remote_id,
            parent_id,
            removed: false,
            record,
            previous_hash: None,
        }
    }

    /// The removal of a record last seen with `previous_hash`.
    pub fn removal(resource: &str, remote_id: &str, previous_hash: &str) -> Self {
        Self {
            resource: resource.to_owned(),
            remote_id: remote_id.to_owned(),
            parent_id: None,
            removed: true,
            record: Value::Null,
            previous_hash: Some(previous_hash.to_owned()),
        }
    }

    /// Reads a record back from an event's data.
    pub fn from_data(data: &serde_json::Map<String, Value>) -> Result<Self, serde_json::Error> {
        Self::deserialize(Value::Object(data.clone()))
    }

    /// SHA-256 (hex) of the record's canonical JSON (keys sorted), or [`REMOVED_HASH`].
    pub fn content_hash(&self) -> String {
        if self.removed {
            return REMOVED_HASH.to_owned();
        }
        let mut bytes = Vec::new();
        canonical(&self.record, &mut bytes);
        hex(&Sha256::digest(&bytes))
    }

    /// The record's stable id: UUIDv5 of provider, resource and remote id.
    pub fn stable_id(&self, provider: &str) -> Uuid {
        item_uuid(provider, &self.resource, &self.remote_id)
    }

    /// The event id of this version: UUIDv5 of the key, the previous hash and this one.
    pub fn event_id(&self, provider: &str) -> Uuid {
        Uuid::new_v5(
            &NAMESPACE,
            format!(
                "{provider}\u{1f}item\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
                self.resource,
                self.remote_id,
                self.previous_hash.as_deref().unwrap_or(""),
                self.content_hash()
            )
            .as_bytes(),
        )
    }

    /// Why this record cannot be stored, if it cannot: an id out of bounds, a NUL anywhere
    /// (PostgreSQL's jsonb refuses it), or a record over [`MAX_RECORD_BYTES`].
    pub fn problem(&self) -> Option<String> {
        let texts = [
            ("resource", self.resource.as_str()),
            ("id", self.remote_id.as_str()),
            ("parent id", self.parent_id.as_deref().unwrap_or("")),
        ];
        if let Some(problem) = texts
            .into_iter()
            .find_map(|(name, value)| text_problem(name, value, MAX_ID_BYTES))
        {
            return Some(problem);
        }
        if self.remote_id.is_empty() || self.resource.is_empty() {
            return Some("a record needs a resource and an id".into());
        }
        let mut bytes = Vec::new();
        canonical(&self.record, &mut bytes);
        if bytes.len() > MAX_RECORD_BYTES {
            return Some(format!(
                "record of {} bytes is over the limit of {MAX_RECORD_BYTES}",
                bytes.len()
            ));
        }
        // serde_json escapes a NUL as \u0000, which jsonb refuses.
        let text = String::from_utf8_lossy(&bytes);
        text.contains("\\u0000")
            .then(|| "the record contains a NUL character".to_owned())
    }
}

/// UUIDv5 of provider + resource + remote id.
pub fn item_uuid(provider: &str, resource: &str, remote_id: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("{provider}\u{1f}item\u{1f}{resource}\u{1f}{remote_id}").as_bytes(),
    )
}

/// A record's id as text: a string as is, an integer in its digits; anything else is no id.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// JSON with object keys sorted at every level, whatever order the map keeps: the bytes the
/// content hash is taken of.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, key);
                out.push(b':');
                canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn post(body: Value) -> ItemRecord {
        ItemRecord::version("posts", "1".into(), Some("1".into()), body)
    }

    #[test]
    fn the_hash_ignores_key_order_and_sees_any_change() {
        let a = post(json!({"id": 1, "title": "a", "nested": {"x": 1, "y": [1, 2]}}));
        let b = post(
            serde_json::from_str(r#"{"nested":{"y":[1,2],"x":1},"title":"a","id":1}"#)
                .expect("json"),
        );
        assert_eq!(a.content_hash(), b.content_hash());
        let c = post(json!({"id": 1, "title": "b", "nested": {"x": 1, "y": [1, 2]}}));
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn event_ids_follow_the_version_chain() {
        let mut v1 = post(json!({"id": 1}));
        let first = v1.event_id("p");
        assert_eq!(first, v1.clone().event_id("p"));
        let removal = ItemRecord::removal("posts", "1", &v1.content_hash());
        assert_eq!(removal.content_hash(), REMOVED_HASH);
        // The same content returning after a removal is a new event.
        v1.previous_hash = Some(REMOVED_HASH.into());
        assert_ne!(v1.event_id("p"), first);
        assert_ne!(removal.event_id("p"), first);
        assert_eq!(v1.stable_id("p"), removal.stable_id("p"));
    }

    #[test]
    fn problems_name_what_cannot_be_stored() {
        assert_eq!(post(json!({"id": 1})).problem(), None);
        let nul = post(json!({"t": "a\u{0}b"})).problem().expect("NUL");
        assert!(nul.contains("NUL"), "{nul}");
        let big = post(json!({"t": "x".repeat(MAX_RECORD_BYTES)}))
            .problem()
            .expect("big");
        assert!(big.contains("over the limit"), "{big}");
        let long = ItemRecord::version("posts", "9".repeat(200), None, json!({}));
        assert!(long.problem().expect("long").contains("id of 200 bytes"));
        assert_eq!(id_text(&json!(7)), Some("7".into()));
        assert_eq!(id_text(&json!("a7")), Some("a7".into()));
        assert_eq!(id_text(&json!(1.5)), None);
        assert_eq!(id_text(&json!(null)), None);
    }
}
