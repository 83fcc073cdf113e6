//! The one message type on the queue, whoever produced it (HTTP, a provider, an import).
//!
//! Versioned by a `v` tag so a worker can refuse (and dead-letter) a version it does not know
//! instead of misreading it, and a new version can be rolled out worker-first.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;

/// A message on the events queue. The AMQP message id is the event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum Envelope {
    #[serde(rename = "1")]
    V1(EnvelopeV1),
}

/// Version 1 of the envelope: one event, stamped by whoever accepted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeV1 {
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
    /// The id of the event inside, which is also the message id.
    pub fn event_id(&self) -> Uuid {
        match self {
            Envelope::V1(v1) => v1.event.id,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data (strings, uuids, a JSON map) cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
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

    fn sample() -> Envelope {
        Envelope::V1(EnvelopeV1 {
            app_id: "shop".into(),
            source: Source::Provider("fever".into()),
            received_at: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            request_id: Some("req-1".into()),
            event: serde_json::from_value(json!({
                "id": "0190a5a0-0000-7000-8000-000000000001",
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "category": "page interaction",
                "name": "pageview",
                "data": {"host": "h", "path": "/"},
                "timestamp": "2021-01-01T09:15:27.243860Z"
            }))
            .expect("event"),
        })
    }

    #[test]
    fn envelope_carries_its_version_tag_and_round_trips() {
        let env = sample();
        let bytes = env.to_json();
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value["v"], "1");
        assert_eq!(value["source"], "provider:fever");
        assert_eq!(Envelope::from_json(&bytes).expect("decode"), env);
    }

    #[test]
    fn unknown_versions_and_sources_are_refused() {
        let mut value = serde_json::to_value(sample()).expect("json");
        value["v"] = json!("2");
        assert!(serde_json::from_value::<Envelope>(value.clone()).is_err());
        value["v"] = json!("1");
        value["source"] = json!("carrier-pigeon");
        assert!(serde_json::from_value::<Envelope>(value).is_err());
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
}
