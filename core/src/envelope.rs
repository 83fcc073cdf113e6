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

impl Message {
    /// Decodes a message body into its envelopes.
    pub fn decode(bytes: &[u8]) -> Result<Vec<Envelope>, DecodeError> {
        let message: Message = serde_json::from_slice(bytes)?;
        if message.v != MESSAGE_VERSION {
            return Err(DecodeError::Version(message.v));
        }
        if message.envelopes.is_empty() {
            return Err(DecodeError::Empty);
        }
        Ok(message.envelopes)
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
        assert_eq!(Message::decode(&bytes).expect("decode"), envelopes);
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
        assert!(matches!(Message::decode(&bytes), Err(DecodeError::Json(_))));
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
            proptest::prop_assert_eq!(Message::decode(&bytes).expect("decode"), envelopes);
        }
    }
}
