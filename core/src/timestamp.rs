//! Event timestamps as clients send them.
//!
//! Accepted: RFC 3339 (`2021-01-01T09:15:27.243860Z`, `+02:00` offsets) and the seed clients'
//! form with a space separator (`2021-01-01 09:15:27.243860`), optional fraction, optional
//! `Z`/offset. No offset means UTC.

use chrono::{DateTime, Utc};

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?}: expected RFC 3339 or `YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM]`")]
pub struct TimestampError(pub String);

/// Longest input we try to parse; anything longer is not a timestamp.
const MAX_LEN: usize = 64;

/// Parses a client timestamp into UTC.
pub fn parse_timestamp(input: &str) -> Result<DateTime<Utc>, TimestampError> {
    let err = || TimestampError(input.chars().take(MAX_LEN).collect());
    let s = input.trim();
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(err());
    }
    // One RFC 3339 parse reads every accepted form: the separator normalised to `T`, and
    // `Z` added when no offset is given (no offset means UTC).
    let mut normalised = String::with_capacity(s.len() + 1);
    match s.as_bytes().get(10) {
        Some(b' ' | b't') => {
            normalised.push_str(&s[..10]);
            normalised.push('T');
            normalised.push_str(&s[11..]);
        }
        _ => normalised.push_str(s),
    }
    let has_offset = normalised
        .get(19..)
        .is_some_and(|tail| tail.contains(['Z', 'z', '+', '-']));
    if !has_offset {
        normalised.push('Z');
    }
    DateTime::parse_from_rfc3339(&normalised)
        .map(|with_offset| with_offset.with_timezone(&Utc))
        .map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Timelike};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_timestamp(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_every_documented_form() {
        let expected = Utc
            .with_ymd_and_hms(2021, 1, 1, 9, 15, 27)
            .single()
            .and_then(|t| t.with_nanosecond(243_860_000))
            .expect("valid date");
        let cases = [
            "2021-01-01T09:15:27.243860Z",
            "2021-01-01 09:15:27.243860Z",
            "2021-01-01 09:15:27.243860",
            "2021-01-01T09:15:27.243860",
            "2021-01-01 11:15:27.243860+02:00",
            "2021-01-01T04:15:27.243860-05:00",
            " 2021-01-01 09:15:27.243860 ",
        ];
        for case in cases {
            assert_eq!(utc(case), expected, "{case}");
        }
    }

    #[test]
    fn fraction_is_optional() {
        assert_eq!(
            utc("2021-01-01 09:15:27"),
            Utc.with_ymd_and_hms(2021, 1, 1, 9, 15, 27)
                .single()
                .expect("valid")
        );
        assert_eq!(
            utc("2021-01-01 09:15:27Z"),
            utc("2021-01-01T09:15:27+00:00")
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for case in [
            "",
            "yesterday",
            "2021-13-01 09:15:27",
            "2021-02-30 09:15:27",
            "2021-01-01",
            "09:15:27",
            "2021-01-01 25:00:00",
            "1609492527",
            "2021-01-01 09:15:27.243860 UTC",
        ] {
            assert!(parse_timestamp(case).is_err(), "{case:?} should be refused");
        }
        let long = "9".repeat(1000);
        let e = parse_timestamp(&long).expect_err("too long");
        assert!(e.0.len() <= MAX_LEN);
    }

    proptest! {
        #[test]
        fn any_instant_round_trips_through_both_forms(secs in 0i64..4_102_444_800, micros in 0u32..1_000_000) {
            let t = DateTime::from_timestamp(secs, micros * 1000).expect("in range");
            prop_assert_eq!(parse_timestamp(&t.to_rfc3339()).expect("rfc3339"), t);
            let seed_form = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            prop_assert_eq!(parse_timestamp(&seed_form).expect("seed form"), t);
        }

        #[test]
        fn never_panics_on_arbitrary_input(s in "\\PC{0,80}") {
            let _ = parse_timestamp(&s);
        }
    }
}
