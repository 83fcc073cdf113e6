//! The events the load test posts: the seed's three event types spread over many sessions,
//! plus a small share the worker must refuse, so both of its outcomes carry load, and
//! optionally a share of hostile ones (see [`crate::hostile`]). Pure: the caller hands in
//! the randomness and the clock, which keeps it testable.

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::hostile;

/// Where an accepted event should end up once the worker has judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Stored,
    /// An `invalid` dead letter.
    Refused,
}

/// One event to post. The client chooses the id, so the ledger knows which ids got a 202.
#[derive(Debug, Clone)]
pub struct Generated {
    pub id: Uuid,
    pub body: Value,
    pub expect: Expect,
}

/// The seed clients' event types, each with the `data` keys the worker requires of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pageview,
    CtaClick,
    FormSubmit,
}

impl Kind {
    /// Weighted like a site's traffic: mostly page views, some clicks, few submissions.
    const WEIGHTED: [Kind; 6] = [
        Kind::Pageview,
        Kind::Pageview,
        Kind::Pageview,
        Kind::CtaClick,
        Kind::CtaClick,
        Kind::FormSubmit,
    ];

    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pageview => ("page interaction", "pageview"),
            Kind::CtaClick => ("page interaction", "cta click"),
            Kind::FormSubmit => ("form interaction", "submit"),
        }
    }

    fn required_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Pageview => &["host", "path"],
            Kind::CtaClick => &["host", "path", "element"],
            Kind::FormSubmit => &["host", "path", "form"],
        }
    }
}

const HOSTS: [&str; 3] = [
    "www.consumeraffairs.com",
    "shop.consumeraffairs.com",
    "reviews.example.org",
];
const PATHS: [&str; 5] = ["/", "/pricing", "/reviews", "/compare/cars", "/signup"];
const ELEMENTS: [&str; 4] = ["chat bubble", "get started", "read more", "subscribe"];
const FIRST_NAMES: [&str; 4] = ["John", "Ana", "Wei", "Fatima"];
const LAST_NAMES: [&str; 4] = ["Doe", "Silva", "Chen", "Okafor"];

/// The seed clients' timestamp form, `2021-01-01 09:15:27.243860`, in UTC.
pub(crate) const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// Makes events: a fixed pool of sessions, and the shares of events to spoil.
#[derive(Debug, Clone)]
pub struct EventMix {
    sessions: Vec<Uuid>,
    invalid_share: f64,
    hostile_share: f64,
}

impl EventMix {
    /// `sessions` random session ids (at least one); the shares are clamped to 0..=1, and
    /// the hostile one to what the invalid one leaves.
    pub fn new(sessions: usize, invalid_share: f64, hostile_share: f64) -> Self {
        let invalid_share = invalid_share.clamp(0.0, 1.0);
        Self {
            sessions: (0..sessions.max(1)).map(|_| Uuid::new_v4()).collect(),
            invalid_share,
            hostile_share: hostile_share.clamp(0.0, 1.0 - invalid_share),
        }
    }

    /// A fresh event stamped `now`: valid; or, with the configured chances, missing one of
    /// the keys its type requires (the worker's `required_keys` rule refuses it), or hostile.
    pub fn generate<R: Rng + ?Sized>(&self, rng: &mut R, now: DateTime<Utc>) -> Generated {
        let kind = *pick(rng, &Kind::WEIGHTED);
        let mut data = data_for(kind, rng);
        let (category, name) = kind.labels();
        let id = Uuid::now_v7();
        let mut body = json!({
            "id": id,
            "session_id": pick(rng, &self.sessions),
            "category": category,
            "name": name,
            "timestamp": now.format(TIMESTAMP_FORMAT).to_string(),
        });
        let draw: f64 = rng.random();
        let expect = if draw < self.invalid_share {
            data.remove(*pick(rng, kind.required_keys()));
            Expect::Refused
        } else if draw < self.invalid_share + self.hostile_share {
            hostile::spoil(&mut body, &mut data, rng, now)
        } else {
            Expect::Stored
        };
        body["data"] = Value::Object(data);
        Generated { id, body, expect }
    }
}

fn data_for<R: Rng + ?Sized>(kind: Kind, rng: &mut R) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("host".into(), (*pick(rng, &HOSTS)).into());
    data.insert("path".into(), (*pick(rng, &PATHS)).into());
    match kind {
        Kind::Pageview => {}
        Kind::CtaClick => {
            data.insert("element".into(), (*pick(rng, &ELEMENTS)).into());
        }
        Kind::FormSubmit => {
            data.insert(
                "form".into(),
                json!({
                    "first_name": pick(rng, &FIRST_NAMES),
                    "last_name": pick(rng, &LAST_NAMES),
                }),
            );
        }
    }
    data
}

/// A random element of a slice the code above never leaves empty.
pub(crate) fn pick<'a, T, R: Rng + ?Sized>(rng: &mut R, items: &'a [T]) -> &'a T {
    items
        .choose(rng)
        .unwrap_or_else(|| unreachable!("choosing from an empty list"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_core::{EventIn, Source};
    use eye_worker::validation::{Registry, Subject, default_rules};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashSet;

    fn sample(mix: &EventMix, n: usize) -> Vec<Generated> {
        let mut rng = StdRng::seed_from_u64(7);
        let now = Utc::now();
        (0..n).map(|_| mix.generate(&mut rng, now)).collect()
    }

    #[test]
    fn every_event_is_one_the_api_accepts() {
        for event in sample(&EventMix::new(50, 0.5, 0.0), 500) {
            let wire: EventIn = serde_json::from_value(event.body.clone()).expect("wire shape");
            let parsed = wire.into_event().expect("acceptable event");
            assert_eq!(parsed.id, event.id, "the client's id is the event's id");
        }
    }

    #[test]
    fn the_worker_stores_valid_events_and_refuses_the_spoiled_ones() {
        let rules = Registry::builtin()
            .build(&default_rules(300))
            .expect("the default rules build");
        let received_at = Utc::now();
        for event in sample(&EventMix::new(50, 0.5, 0.0), 500) {
            let wire: EventIn = serde_json::from_value(event.body.clone()).expect("wire shape");
            let parsed = wire.into_event().expect("acceptable event");
            let violations = rules.validate(&Subject {
                app_id: "loadtest",
                source: &Source::Http,
                received_at,
                event: &parsed,
            });
            let judged = if violations.is_empty() {
                Expect::Stored
            } else {
                Expect::Refused
            };
            assert_eq!(judged, event.expect, "{}: {violations:?}", event.body);
        }
    }

    #[test]
    fn the_mix_covers_the_seed_types_and_the_invalid_share_roughly() {
        let events = sample(&EventMix::new(1000, 0.02, 0.0), 10_000);
        let names: HashSet<&str> = events
            .iter()
            .filter_map(|e| e.body["name"].as_str())
            .collect();
        assert_eq!(names, HashSet::from(["pageview", "cta click", "submit"]));
        let invalid = events
            .iter()
            .filter(|e| e.expect == Expect::Refused)
            .count();
        assert!(
            (100..=300).contains(&invalid),
            "{invalid} invalid of 10,000"
        );
        let sessions: HashSet<&str> = events
            .iter()
            .filter_map(|e| e.body["session_id"].as_str())
            .collect();
        assert!(sessions.len() > 900, "{} sessions", sessions.len());
    }

    #[test]
    fn ids_are_unique_and_timestamps_have_the_seed_form() {
        let now = DateTime::parse_from_rfc3339("2021-01-01T09:15:27.24386Z")
            .expect("a time")
            .with_timezone(&Utc);
        let mix = EventMix::new(1, 0.0, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let events: Vec<Generated> = (0..100).map(|_| mix.generate(&mut rng, now)).collect();
        let ids: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 100);
        assert_eq!(events[0].body["timestamp"], "2021-01-01 09:15:27.243860");
        assert!(events.iter().all(|e| e.expect == Expect::Stored));
    }
}
