//! Event timestamps as clients send them.
//!
//! Accepted: RFC 3339 (`2021-01-01T09:15:27.243860Z`, `+02:00` offsets) and the seed clients'
//! form with a space separator (`2021-01-01 09:15:27.243860`), optional fraction, optional
//! `Z`/offset. No offset means UTC.
//!
//! [`YEARS`] is the range of instants the Eye accepts anywhere it meets the database: stored
//! event timestamps and every time a read compares against one (query parameters, cursors).

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Utc};

/// The years (in UTC) the Eye stores and reads. PostgreSQL's timestamps reach further (4713 BC
/// to 294276 AD), but RFC 3339 and the seed's form write four-digit years only, so an instant
/// outside these years could be stored and never written back; and a value PostgreSQL cannot
/// hold (a forged cursor's 5000 BC) would fail the query instead of being refused.
pub const YEARS: RangeInclusive<i32> = 1..=9999;

/// An instant that parsed but lies outside [`YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("year {0} is outside the years {start} to {end} (in UTC) the Eye keeps", start = YEARS.start(), end = YEARS.end())]
pub struct OutOfYears(pub i32);

/// `t` itself when its year lies within [`YEARS`] (an instant's year in UTC; a naive
/// date-time's as written, which is how the provider tables store them).
pub fn within_years<T: Datelike>(t: T) -> Result<T, OutOfYears> {
    let year = t.year();
    if YEARS.contains(&year) {
        Ok(t)
    } else {
        Err(OutOfYears(year))
    }
}

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

    #[test]
    fn years_bound_every_instant_the_eye_keeps() {
        let inside = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"];
        for case in inside {
            assert!(within_years(utc(case)).is_ok(), "{case}");
        }
        // Parsed, but a year 0 / year 10000 once in UTC: outside.
        let outside = ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"];
        for case in outside {
            assert!(within_years(utc(case)).is_err(), "{case}");
        }
        for far in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            assert_eq!(within_years(far.naive_utc()), Err(OutOfYears(far.year())));
        }
        assert_eq!(
            OutOfYears(-5000).to_string(),
            "year -5000 is outside the years 1 to 9999 (in UTC) the Eye keeps"
        );
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
