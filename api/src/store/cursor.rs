//! Keyset pagination: where a page ended, as an opaque token for the client, and how a
//! page is cut from the rows a query fetched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use eye_core::timestamp::within_years;
use uuid::Uuid;

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

/// Cuts the `limit + 1` rows a keyset query fetched down to a page; returns the cursor of
/// the next page, if there is one.
pub(super) fn cut_page<T>(
    rows: &mut Vec<T>,
    limit: u64,
    key: impl Fn(&T) -> Cursor,
) -> Option<String> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    more.then(|| rows.last())
        .flatten()
        .map(|last| key(last).encode())
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
