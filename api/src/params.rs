//! Query-string parameters: parsed into typed filters at the edge, each refusal naming the
//! parameter (400 `invalid_parameter`).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use eye_core::timestamp::{parse_timestamp, within_years};
use uuid::Uuid;

use crate::error::ApiError;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// The raw query string as name -> value, refusing a repeated parameter.
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadParameter {
                param: "query".into(),
                message: e.body_text(),
            })?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(bad(&name, "given more than once"));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }
}

/// A UUID from a query or path parameter, refused (400) naming the parameter.
pub fn uuid_param(name: &str, text: &str) -> Result<Uuid, ApiError> {
    text.parse()
        .map_err(|_| bad(name, format!("not a UUID: {text:?}")))
}

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadParameter {
        param: param.to_owned(),
        message: message.into(),
    }
}

impl Params {
    /// Refuses parameters this endpoint does not know (a typo would otherwise be ignored).
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(bad(
                unknown,
                format!("unknown parameter; known: {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            Some(v) if v.is_empty() => Err(bad(name, "must not be empty")),
            Some(v) if v.contains('\0') => Err(bad(name, "must not contain NUL")),
            other => Ok(other.cloned()),
        }
    }

    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(name, format!("not a UUID: {v:?}")))
            })
            .transpose()
    }

    /// A time in a form `parse_timestamp` reads, within the years the database is asked
    /// about ([`eye_core::timestamp::YEARS`]).
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                let t = parse_timestamp(v).map_err(|e| bad(name, e.to_string()))?;
                within_years(t).map_err(|e| bad(name, e.to_string()))
            })
            .transpose()
    }

    /// `limit`: 1..=MAX_LIMIT, DEFAULT_LIMIT when absent.
    pub fn limit(&self) -> Result<u64, ApiError> {
        let Some(raw) = self.0.get("limit") else {
            return Ok(DEFAULT_LIMIT);
        };
        match raw.parse::<u64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )),
        }
    }

    pub fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.0
            .get("cursor")
            .map(|v| Cursor::decode(v).ok_or_else(|| bad("cursor", "not a cursor this api issued")))
            .transpose()
    }
}

/// Where a page ended: the (timestamp, id) of its last event. Opaque to clients, so anyone
/// can forge one: [`Cursor::decode`] accepts only what the database can be asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(24);
        raw.extend_from_slice(&self.timestamp.timestamp_micros().to_be_bytes());
        raw.extend_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The cursor `encode` wrote, or None: not base64, not 24 bytes, or a time outside
    /// [`eye_core::timestamp::YEARS`] (PostgreSQL fails a query given 5000 BC).
    pub fn decode(text: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        let (micros, id) = raw.split_first_chunk::<8>()?;
        let timestamp = DateTime::from_timestamp_micros(i64::from_be_bytes(*micros))?;
        let timestamp = within_years(timestamp).ok()?;
        let id = Uuid::from_slice(id).ok()?;
        Some(Self { timestamp, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cursors_round_trip(micros in -62_135_596_800_000_000i64..253_402_300_799_000_000, id in any::<u128>()) {
            let cursor = Cursor {
                timestamp: DateTime::from_timestamp_micros(micros).expect("in range"),
                id: Uuid::from_u128(id),
            };
            prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }

        #[test]
        fn garbage_is_not_a_cursor(text in "\\PC{0,40}") {
            let _ = Cursor::decode(&text);
        }

        /// Any bytes, encoded as a client would forge them: decoding never panics, and a
        /// cursor it accepts is one the database can be asked about, and encodes back.
        #[test]
        fn a_forged_cursor_is_refused_or_within_range(
            raw in prop_oneof![vec(any::<u8>(), 24), vec(any::<u8>(), 0..40)]
        ) {
            if let Some(cursor) = Cursor::decode(&URL_SAFE_NO_PAD.encode(&raw)) {
                prop_assert!(within_years(cursor.timestamp).is_ok());
                prop_assert_eq!(URL_SAFE_NO_PAD.decode(cursor.encode()).ok(), Some(raw));
            }
        }

        /// Every 24-byte cursor: exactly those whose time lies within the years are accepted.
        #[test]
        fn a_cursor_of_any_time_is_accepted_only_within_the_years(micros in any::<i64>(), id in any::<u128>()) {
            let mut raw = micros.to_be_bytes().to_vec();
            raw.extend_from_slice(&id.to_be_bytes());
            let decoded = Cursor::decode(&URL_SAFE_NO_PAD.encode(raw));
            let expected = DateTime::from_timestamp_micros(micros).and_then(|t| within_years(t).ok());
            prop_assert_eq!(decoded.map(|c| c.timestamp), expected);
        }
    }

    #[test]
    fn short_or_padded_input_is_refused() {
        assert_eq!(Cursor::decode(""), None);
        assert_eq!(Cursor::decode("AAAA"), None);
        assert_eq!(Cursor::decode("not base64!"), None);
    }

    #[test]
    fn a_cursor_beyond_the_years_is_refused() {
        let forge = |micros: i64| {
            let mut raw = micros.to_be_bytes().to_vec();
            raw.extend_from_slice(Uuid::nil().as_bytes());
            URL_SAFE_NO_PAD.encode(raw)
        };
        // Year 10000 and year 0 (1 BC), each a microsecond past the edge; then the extremes.
        for micros in [
            253_402_300_800_000_000,
            -62_135_596_800_000_001,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(Cursor::decode(&forge(micros)), None, "{micros}");
        }
        assert!(Cursor::decode(&forge(253_402_300_799_999_999)).is_some());
        assert!(Cursor::decode(&forge(-62_135_596_800_000_000)).is_some());
    }
}
