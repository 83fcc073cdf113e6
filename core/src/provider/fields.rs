//! What a provider record may hold to be storable: bounded sizes, no NUL, dates PostgreSQL
//! can keep. One definition, used by the fetcher's parsers when they build records (a plan
//! outside it becomes a [`Rejected`](super::Rejected) record, never a failed database
//! statement) and by the worker's `provider_record` validator.
//!
//! The bounds follow from the storage: PostgreSQL refuses NUL in `text` and `jsonb`; a
//! btree index entry must stay under about 2,700 bytes (ids are in the primary keys, the title
//! in `/search`'s covering index); `timestamp` ends at year 4713 BC; and a queue message
//! carries up to 100 plans, so a plan's zones are bounded too.

use std::fmt::Write;

use chrono::{Datelike, NaiveDateTime};
use sha2::{Digest, Sha256};

use super::PlanRecord;
use crate::timestamp::YEARS;

/// Longest id (base plan, plan, zone, organizer) and sell mode, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest title, in bytes (the covering index holds it beside five small columns).
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest zone name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most zones in one plan (a plan is one message entry: 1,000 zones are about 110 KB).
pub const MAX_ZONES: usize = 1000;
/// Longest reason a rejected record carries, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

impl PlanRecord {
    /// Why this plan cannot be stored, if it cannot: the first field out of bounds.
    pub fn problem(&self) -> Option<String> {
        let texts = [
            ("base_plan_id", self.base_plan_id.as_str(), MAX_ID_BYTES),
            ("plan_id", &self.plan_id, MAX_ID_BYTES),
            ("title", &self.title, MAX_TITLE_BYTES),
            ("sell_mode", &self.sell_mode, MAX_ID_BYTES),
            (
                "organizer_company_id",
                self.organizer_company_id.as_deref().unwrap_or(""),
                MAX_ID_BYTES,
            ),
        ];
        let zones = self.zones.iter().flat_map(|z| {
            [
                ("zone_id", z.zone_id.as_str(), MAX_ID_BYTES),
                ("zone name", z.name.as_str(), MAX_NAME_BYTES),
            ]
        });
        let dates = [
            ("starts_at", self.starts_at),
            ("ends_at", self.ends_at),
            ("sell_from", self.sell_from),
            ("sell_to", self.sell_to),
        ];
        texts
            .into_iter()
            .chain(zones)
            .find_map(|(name, value, max)| text_problem(name, value, max))
            .or_else(|| {
                (self.zones.len() > MAX_ZONES)
                    .then(|| format!("{} zones, over the limit of {MAX_ZONES}", self.zones.len()))
            })
            .or_else(|| {
                dates
                    .into_iter()
                    .find_map(|(name, value)| date_problem(name, value))
            })
    }
}

/// Why a text field cannot be stored: a NUL, or more than `max` bytes.
pub fn text_problem(name: &str, value: &str, max: usize) -> Option<String> {
    if value.contains('\0') {
        return Some(format!(
            "{name} {:?} contains a NUL character",
            printable(value, 64)
        ));
    }
    (value.len() > max).then(|| {
        format!(
            "{name} of {} bytes is over the limit of {max} ({:?})",
            value.len(),
            printable(value, 64)
        )
    })
}

fn date_problem(name: &str, value: NaiveDateTime) -> Option<String> {
    // The Eye's one year range (the feeds' `YYYY` form fits it too).
    (!YEARS.contains(&value.year())).then(|| {
        format!(
            "{name} {value} is outside the years {}..={}",
            YEARS.start(),
            YEARS.end()
        )
    })
}

/// `value` made fit for a rejected record: control characters escaped (PostgreSQL refuses
/// NUL) and, past `max` bytes, cut on a character boundary and marked with the full length
/// and a digest, so two long values sharing a prefix stay apart.
pub fn printable(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max) + 8);
    for c in value.chars() {
        if out.len() >= max {
            let digest = Sha256::digest(value.as_bytes());
            let _ = write!(out, "…[{} bytes, sha256 ", value.len());
            for b in &digest[..6] {
                let _ = write!(out, "{b:02x}");
            }
            out.push(']');
            return out;
        }
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_nul_and_cuts_long_values_apart() {
        assert_eq!(printable("a\0b", 10), "a\\u{0}b");
        assert_eq!(printable("été", 10), "été");
        let (a, b) = ("x".repeat(300) + "a", "x".repeat(300) + "b");
        let (pa, pb) = (printable(&a, 128), printable(&b, 128));
        assert!(
            pa.starts_with(&"x".repeat(128)) && pa.contains("301 bytes"),
            "{pa}"
        );
        assert_ne!(pa, pb);
        assert!(pa.len() < 180);
        // A cut never splits a character.
        assert!(printable(&"é".repeat(100), 5).starts_with("ééé…"));
    }

    #[test]
    fn text_problems_name_the_field() {
        assert_eq!(text_problem("plan_id", "12", 4), None);
        let nul = text_problem("plan_id", "1\0x", 4).expect("NUL");
        assert!(nul.contains("plan_id") && nul.contains("NUL"), "{nul}");
        let long = text_problem("title", &"t".repeat(5), 4).expect("long");
        assert!(long.contains("5 bytes is over the limit of 4"), "{long}");
    }
}
