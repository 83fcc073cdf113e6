//! The queue contract's payloads: an [`Envelope`] is one accepted event with its provenance;
//! a [`Message`] is what travels on the queue, one or more envelopes published and
//! confirmed together (group commit: the api answers every request of a message after that
//! message's single confirm).
//!
//! Messages carry a version (`"v"`) so a worker refuses (and dead-letters) a version it does
//! not know instead of misreading it, and a new version can be rolled out worker-first.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::event::Event;

/// The message version this code writes and reads.
pub const MESSAGE_VERSION: &str = "1";

/// One accepted event, stamped by whoever accepted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The application that sent the event, taken from its token, never from the body.
    pub app_id: String,
    pub source: Source,
    pub received_at: DateTime<Utc>,
    /// The request id of the HTTP request that carried it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub event: Event,
}

impl Envelope {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data (strings, uuids, a JSON map) cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A message on the events queue: `{"v": "1", "envelopes": [Envelope, ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub v: String,
    pub envelopes: Vec<Envelope>,
}

/// Why a message body is not a message this code can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown message version {0:?} (this worker reads {MESSAGE_VERSION:?})")]
    Version(String),
    #[error("a message holds no envelope")]
    Empty,
}

/// An envelope of a readable message that is not an envelope this code can read: kept
/// whole, with whatever provenance could be read from it, so it is dead-lettered under its own
/// application and event id and its neighbours in the message are still stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BadEnvelope {
    /// The envelope's JSON text, byte for byte.
    pub raw: String,
    pub app_id: Option<String>,
    pub source: Option<String>,
    pub event_id: Option<Uuid>,
    pub reason: String,
}

/// The message shape with each envelope left unparsed, so one bad envelope fails alone.
/// serde_json skips a raw value without a recursion limit, so any depth reaches this point.
#[derive(Deserialize)]
struct RawMessage<'a> {
    v: String,
    #[serde(borrow)]
    envelopes: Vec<&'a RawValue>,
}

/// The provenance fields of an envelope, each read on its own so a wrong one spoils no other.
#[derive(Deserialize)]
struct Provenance<'a> {
    #[serde(borrow, default)]
    app_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EventId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

impl BadEnvelope {
    fn new(raw: &RawValue, reason: String) -> Self {
        let field =
            |v: Option<&RawValue>| v.and_then(|v| serde_json::from_str::<String>(v.get()).ok());
        let provenance = serde_json::from_str::<Provenance<'_>>(raw.get()).ok();
        let (app_id, source, event) = match provenance {
            Some(p) => (field(p.app_id), field(p.source), p.event),
            None => (None, None, None),
        };
        let event_id = event
            .and_then(|e| serde_json::from_str::<EventId<'_>>(e.get()).ok())
            .and_then(|e| e.id)
            .and_then(|id| serde_json::from_str::<Uuid>(id.get()).ok());
        Self {
            raw: raw.get().to_owned(),
            app_id,
            source,
            event_id,
            reason,
        }
    }
}

impl Message {
    /// Decodes a message body into its envelopes, each on its own: an envelope that cannot be
    /// read is returned as a [`BadEnvelope`] beside the others. Only a body that is not a
    /// message at all (not JSON, another version, no envelope) is an error.
    pub fn decode(bytes: &[u8]) -> Result<Vec<Result<Envelope, BadEnvelope>>, DecodeError> {
        let message: RawMessage<'_> = serde_json::from_slice(bytes)?;
        if message.v != MESSAGE_VERSION {
            return Err(DecodeError::Version(message.v));
        }
        if message.envelopes.is_empty() {
            return Err(DecodeError::Empty);
        }
        Ok(message
            .envelopes
            .into_iter()
            .map(|raw| {
                serde_json::from_str::<Envelope>(raw.get())
                    .map_err(|e| BadEnvelope::new(raw, format!("not an envelope: {e}")))
            })
            .collect())
    }

    /// Builds a message body from envelopes already serialized by [`Envelope::to_json`],
    /// without serializing them again: the group-commit publisher's hot path.
    pub fn encode_serialized<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        const HEAD: &[u8] = br#"{"v":"1","envelopes":["#;
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(HEAD);
        for (i, envelope) in envelopes.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(envelope);
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// A message body holding the given envelopes.
    pub fn encode(envelopes: &[Envelope]) -> Vec<u8> {
        let serialized: Vec<Vec<u8>> = envelopes.iter().map(Envelope::to_json).collect();
        Self::encode_serialized(serialized.iter().map(Vec::as_slice))
    }
}

/// Who produced an event: `http`, `provider:<name>` or `import:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Source {
    Http,
    Provider(String),
    Import(String),
}

/// A source string that is none of the known forms.
#[derive(Debug, thiserror::Error)]
#[error("unknown event source {0:?}: expected http, provider:<name> or import:<id>")]
pub struct UnknownSource(String);

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "http" => Ok(Source::Http),
            Some(("provider", name)) if !name.is_empty() => Ok(Source::Provider(name.into())),
            Some(("import", id)) if !id.is_empty() => Ok(Source::Import(id.into())),
            _ => Err(UnknownSource(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Source {
    type Error = UnknownSource;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Source> for String {
    fn from(source: Source) -> Self {
        source.to_string()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http => f.write_str("http"),
            Source::Provider(name) => write!(f, "provider:{name}"),
            Source::Import(id) => write!(f, "import:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(n: u128) -> Envelope {
        Envelope {
            app_id: "shop".into(),
            source: Source::Provider("fever".into()),
            received_at: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            request_id: Some("req-1".into()),
            event: serde_json::from_value(json!({
                "id": uuid::Uuid::from_u128(n),
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "category": "page interaction",
                "name": "pageview",
                "data": {"host": "h", "path": "/"},
                "timestamp": "2021-01-01T09:15:27.243860Z"
            }))
            .expect("event"),
        }
    }

    #[test]
    fn a_message_carries_its_version_and_round_trips() {
        let envelopes = vec![sample(1), sample(2), sample(3)];
        let bytes = Message::encode(&envelopes);
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value["v"], "1");
        assert_eq!(value["envelopes"][0]["source"], "provider:fever");
        assert_eq!(decoded(&bytes), envelopes);
    }

    fn decoded(bytes: &[u8]) -> Vec<Envelope> {
        Message::decode(bytes)
            .expect("decode")
            .into_iter()
            .map(|e| e.expect("envelope"))
            .collect()
    }

    #[test]
    fn a_bad_envelope_fails_alone_with_its_provenance() {
        let good = sample(1);
        let mut bad = serde_json::to_value(sample(2)).expect("json");
        bad["event"]["timestamp"] = json!("not a time");
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let mut deeper = serde_json::to_value(sample(3)).expect("json");
        deeper["event"]["data"] = json!({ "x": deep });
        let body = format!(
            r#"{{"v":"1","envelopes":[{},{},{}]}}"#,
            serde_json::to_string(&good).expect("json"),
            bad,
            serde_json::to_string(&deeper).expect("json"),
        );
        let out = Message::decode(body.as_bytes()).expect("a message");
        assert_eq!(out[0].as_ref().expect("good"), &good);
        for (i, n) in [(1, 2), (2, 3)] {
            let bad = out[i].as_ref().expect_err("bad");
            assert_eq!(bad.app_id.as_deref(), Some("shop"));
            assert_eq!(bad.source.as_deref(), Some("provider:fever"));
            assert_eq!(bad.event_id, Some(uuid::Uuid::from_u128(n)));
        }
    }

    #[test]
    fn unknown_versions_empty_messages_and_sources_are_refused() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&Message::encode(&[sample(1)])).expect("json");
        value["v"] = json!("2");
        let bytes = serde_json::to_vec(&value).expect("json");
        assert!(matches!(Message::decode(&bytes), Err(DecodeError::Version(v)) if v == "2"));
        assert!(matches!(
            Message::decode(br#"{"v":"1","envelopes":[]}"#),
            Err(DecodeError::Empty)
        ));
        value["v"] = json!("1");
        value["envelopes"][0]["source"] = json!("carrier-pigeon");
        let bytes = serde_json::to_vec(&value).expect("json");
        let out = Message::decode(&bytes).expect("a message");
        assert!(
            out[0]
                .as_ref()
                .is_err_and(|bad| bad.app_id.as_deref() == Some("shop"))
        );
        assert!(matches!(Message::decode(b"[1]"), Err(DecodeError::Json(_))));
    }

    #[test]
    fn sources_parse_and_print_the_same() {
        for s in ["http", "provider:fever", "import:42"] {
            assert_eq!(s.parse::<Source>().expect(s).to_string(), s);
        }
        for s in ["", "provider:", "import", "ftp"] {
            assert!(s.parse::<Source>().is_err(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn encoding_serialized_envelopes_equals_encoding_them(n in 1usize..40) {
            let envelopes: Vec<_> = (0..n as u128).map(sample).collect();
            let serialized: Vec<Vec<u8>> = envelopes.iter().map(Envelope::to_json).collect();
            let bytes = Message::encode_serialized(serialized.iter().map(Vec::as_slice));
            proptest::prop_assert_eq!(decoded(&bytes), envelopes);
        }
    }
}
