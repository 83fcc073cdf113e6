//! Hostile-but-accepted events: bodies the API answers 202 that the worker must still refuse
//! (or store), each under its own id and without harming the events that share its message.
//! `make chaos` mixes 1 % of them into the load (`--hostile-percent`). Once the edge and the
//! worker share one definition of a storable event (issue 12, item 4), the edge refuses some
//! of them with a 4xx: those are never accepted, and the ledger does not count them.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::{Map, Value};

use crate::payload::{Expect, TIMESTAMP_FORMAT, pick};

/// One way of being hostile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// A timestamp ten years ahead: the timestamp rule refuses it.
    FarFuture,
    /// The last instant of year 9999 west of UTC, or the first of year 0 east of it: year
    /// 10000 or -1 once in UTC, which the API parsed and the worker could not read back.
    EdgeOfTime,
    /// `data` nested 124 to 126 levels deep: within the API's JSON depth limit, past the
    /// worker's once the envelope wraps it.
    DeepData,
    /// A NUL character in `data`, which PostgreSQL cannot store in jsonb.
    NulInData,
    /// A type no rule knows: stored (the shipped rules warn, the built-in ones say nothing).
    UnknownType,
}

impl Hostile {
    pub const ALL: [Hostile; 5] = [
        Hostile::FarFuture,
        Hostile::EdgeOfTime,
        Hostile::DeepData,
        Hostile::NulInData,
        Hostile::UnknownType,
    ];

    /// Makes a valid event's `body` (and its `data`, set into the body by the caller)
    /// hostile; returns where the event should end up if the API accepts it.
    pub fn apply<R: Rng + ?Sized>(
        self,
        body: &mut Value,
        data: &mut Map<String, Value>,
        rng: &mut R,
        now: DateTime<Utc>,
    ) -> Expect {
        match self {
            Hostile::FarFuture => {
                let later = now + Duration::days(3650);
                body["timestamp"] = later.format(TIMESTAMP_FORMAT).to_string().into();
                Expect::Refused
            }
            Hostile::EdgeOfTime => {
                let edge = pick(
                    rng,
                    &["9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+00:01"],
                );
                body["timestamp"] = (*edge).into();
                Expect::Refused
            }
            Hostile::DeepData => {
                *data = nested(rng.random_range(124..=126));
                Expect::Refused
            }
            Hostile::NulInData => {
                data.insert("note".into(), "before\u{0}after".into());
                Expect::Refused
            }
            Hostile::UnknownType => {
                body["category"] = "chaos".into();
                body["name"] = "never heard of".into();
                Expect::Stored
            }
        }
    }
}

/// Makes a valid event hostile in one of the ways above, chosen at random.
pub fn spoil<R: Rng + ?Sized>(
    body: &mut Value,
    data: &mut Map<String, Value>,
    rng: &mut R,
    now: DateTime<Utc>,
) -> Expect {
    pick(rng, &Hostile::ALL).apply(body, data, rng, now)
}

/// An object `levels` deep: `{"d": {"d": ... {}}}`.
fn nested(levels: usize) -> Map<String, Value> {
    let mut inner = Map::new();
    for _ in 1..levels {
        inner = Map::from_iter([("d".to_owned(), Value::Object(inner))]);
    }
    inner
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::EventMix;
    use eye_core::{EventIn, Source};
    use eye_worker::validation::{Registry, Subject, default_rules};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;
    use uuid::Uuid;

    /// How deep a value nests (a scalar is 0, `{}` is 1).
    fn depth(value: &Value) -> usize {
        match value {
            Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// A seed-shaped event to spoil.
    fn valid(now: DateTime<Utc>) -> (Value, Map<String, Value>) {
        let body = json!({
            "id": Uuid::now_v7(),
            "session_id": Uuid::new_v4(),
            "category": "page interaction",
            "name": "pageview",
            "timestamp": now.format(TIMESTAMP_FORMAT).to_string(),
        });
        let data = json!({"host": "www.example.com", "path": "/"});
        (body, data.as_object().cloned().unwrap_or_default())
    }

    fn spoiled(kind: Hostile) -> (Value, Expect) {
        let (mut body, mut data) = valid(Utc::now());
        let expect = kind.apply(
            &mut body,
            &mut data,
            &mut StdRng::seed_from_u64(3),
            Utc::now(),
        );
        body["data"] = Value::Object(data);
        (body, expect)
    }

    #[test]
    fn each_kind_leaves_its_mark() {
        let (far, _) = spoiled(Hostile::FarFuture);
        assert!(far["timestamp"].as_str().is_some_and(|t| t > "2030"));
        let (edge, _) = spoiled(Hostile::EdgeOfTime);
        let edge = edge["timestamp"].as_str().unwrap_or_default();
        assert!(
            edge.starts_with("9999-") || edge.starts_with("0000-"),
            "{edge}"
        );
        let (deep, _) = spoiled(Hostile::DeepData);
        assert!((124..=126).contains(&depth(&deep["data"])));
        assert_eq!(depth(&deep), depth(&deep["data"]) + 1);
        let (nul, _) = spoiled(Hostile::NulInData);
        assert!(
            nul["data"]["note"]
                .as_str()
                .is_some_and(|s| s.contains('\0'))
        );
        let (unknown, expect) = spoiled(Hostile::UnknownType);
        assert_eq!(
            (unknown["category"].as_str(), expect),
            (Some("chaos"), Expect::Stored)
        );
    }

    /// The two kinds whose verdict is settled today: a far-future timestamp is refused and
    /// an unknown type stored by the built-in rules.
    #[test]
    fn the_worker_rules_judge_them_as_expected() {
        let rules = Registry::builtin()
            .build(&default_rules(300))
            .expect("the default rules build");
        for kind in [Hostile::FarFuture, Hostile::UnknownType] {
            let (body, expect) = spoiled(kind);
            let wire: EventIn = serde_json::from_value(body).expect("wire shape");
            let event = wire.into_event().expect("the API accepts it");
            let violations = rules.validate(&Subject {
                app_id: "chaos",
                source: &Source::Http,
                received_at: Utc::now(),
                event: &event,
            });
            assert_eq!(violations.is_empty(), expect == Expect::Stored, "{kind:?}");
        }
    }

    #[test]
    fn the_mix_makes_about_the_hostile_share_asked() {
        let mix = EventMix::new(10, 0.0, 0.05);
        let mut rng = StdRng::seed_from_u64(11);
        let now = Utc::now();
        // Four kinds of five are meant to be refused: about 4 % of the events.
        let refused = (0..10_000)
            .filter(|_| mix.generate(&mut rng, now).expect == Expect::Refused)
            .count();
        assert!(
            (300..=500).contains(&refused),
            "{refused} refused of 10,000"
        );
    }
}
