//! Erasure's shared definitions: the filter an erasure deletes by (one SQL definition, used
//! by the api's dry run and the worker's deleter, so the counts agree), the tombstone that
//! keeps an erased session's late events out, and the advisory lock that orders a
//! confirmation against the worker's commits.

use chrono::{DateTime, Utc};
use sea_orm::Value;
use uuid::Uuid;

/// PostgreSQL advisory lock (`pg_advisory_xact_lock*`) taken *shared* by every worker commit
/// before it reads the tombstones, and *exclusive* by a confirmation while it writes one. A
/// commit that started before the confirmation finishes before the tombstone exists (so the
/// deleter, which starts after it, sees its rows); one that starts after reads the tombstone.
pub const ERASURE_LOCK: i64 = 0x4559_455f_4552_4153; // "EYE_ERAS"

/// `status` values of an erasure.
pub const STATUS_PENDING: &str = "pending";
pub const STATUS_CONFIRMED: &str = "confirmed";
pub const STATUS_RUNNING: &str = "running";
pub const STATUS_DONE: &str = "done";

/// Which stored data an erasure deletes. At least a session or a time bound (checked by the
/// api and by the table's constraint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub app_id: String,
    pub session_id: Option<Uuid>,
    pub category: Option<String>,
    pub name: Option<String>,
    /// Inclusive lower bound on the event's timestamp.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub to: Option<DateTime<Utc>>,
}

/// Which table a filter's condition is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `events`: plain columns, served by the `(app_id, session_id, timestamp, id)` and
    /// `(app_id, timestamp, id)` indexes.
    Events,
    /// `dead_letters`: the session and the timestamp are read from the kept envelope
    /// (`payload`); a dead letter kept only as bytes is matched by a session-only filter when
    /// the bytes hold the session's id, and never by anything else.
    DeadLetters,
}

/// The dead letter's event timestamp, when its envelope holds one in RFC 3339 form (anything
/// else is NULL rather than a cast error that would stop the deleter).
const DEAD_LETTER_TIME: &str = r#"(CASE WHEN payload->'event'->>'timestamp' ~ '^\d{4}-\d{2}-\d{2}T' THEN (payload->'event'->>'timestamp')::timestamptz END)"#;

impl Filter {
    /// A session and nothing else.
    fn session_only(&self) -> bool {
        self.session_id.is_some()
            && self.category.is_none()
            && self.name.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }

    /// A SQL condition on `table` and its bind values, numbered from `$first`.
    pub fn condition(&self, table: Table, first: usize) -> (String, Vec<Value>) {
        let mut parts = vec![format!("app_id = ${first}")];
        let mut values: Vec<Value> = vec![self.app_id.clone().into()];
        if let (Some(session_id), Table::DeadLetters, true) =
            (self.session_id, table, self.session_only())
        {
            // A dead letter kept only as bytes (no envelope) matches a session-only filter
            // when its bytes hold the session's id, in lower or upper case: the rest of a
            // filter (category, name, time) cannot be read from bytes.
            values.push(session_id.to_string().into());
            let n = first + 1;
            parts.push(format!(
                "(payload->'event'->>'session_id' = ${n} OR (payload IS NULL AND \
                 (position(convert_to(${n}, 'UTF8') in raw) > 0 \
                  OR position(convert_to(upper(${n}), 'UTF8') in raw) > 0)))"
            ));
        }
        let mut bind = |column: &str, op: &str, value: Value| {
            values.push(value);
            parts.push(format!("{column} {op} ${}", first + values.len() - 1));
        };
        let time = match table {
            Table::Events => r#""timestamp""#,
            Table::DeadLetters => DEAD_LETTER_TIME,
        };
        match (self.session_id, table) {
            (Some(session_id), Table::Events) => bind("session_id", "=", session_id.into()),
            (Some(_), Table::DeadLetters) if self.session_only() => {}
            // Compared as text (the envelope's form of a UUID), so nothing is ever cast.
            (Some(session_id), Table::DeadLetters) => bind(
                "payload->'event'->>'session_id'",
                "=",
                session_id.to_string().into(),
            ),
            (None, _) => {}
        }
        if let Some(category) = &self.category {
            bind("category", "=", category.clone().into());
        }
        if let Some(name) = &self.name {
            bind("name", "=", name.clone().into());
        }
        if let Some(from) = self.from {
            bind(time, ">=", from.into());
        }
        if let Some(to) = self.to {
            bind(time, "<", to.into());
        }
        (parts.join(" AND "), values)
    }
}

/// A confirmed erasure's filter, as the worker checks late events against it. With a
/// session, it covers that session's events forever (within the rest of the filter); without
/// one, its time range ends at the confirmation at the latest ([`Tombstone::of`]): late
/// arrivals of the erased range are suppressed, events that happen afterwards are new data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub erasure_id: Uuid,
    pub app_id: String,
    pub session_id: Option<Uuid>,
    pub category: Option<String>,
    pub name: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// What the worker knows of an arriving event, to check it against the tombstones.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub app_id: &'a str,
    pub session_id: Uuid,
    pub category: &'a str,
    pub name: &'a str,
    pub timestamp: DateTime<Utc>,
}

impl Tombstone {
    /// The tombstone of an erasure confirmed at `confirmed_at`.
    pub fn of(erasure_id: Uuid, filter: Filter, confirmed_at: DateTime<Utc>) -> Self {
        let to = match filter.session_id {
            Some(_) => filter.to,
            None => Some(filter.to.map_or(confirmed_at, |to| to.min(confirmed_at))),
        };
        Self {
            erasure_id,
            app_id: filter.app_id,
            session_id: filter.session_id,
            category: filter.category,
            name: filter.name,
            from: filter.from,
            to,
        }
    }

    /// Whether `event` falls under this erasure's filter.
    pub fn covers(&self, event: &Arrival<'_>) -> bool {
        self.app_id == event.app_id
            && self.session_id.is_none_or(|s| s == event.session_id)
            && self.category.as_deref().is_none_or(|c| c == event.category)
            && self.name.as_deref().is_none_or(|n| n == event.name)
            && self.from.is_none_or(|from| event.timestamp >= from)
            && self.to.is_none_or(|to| event.timestamp < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn a_condition_numbers_its_binds_from_the_first_given() {
        let session = Uuid::new_v4();
        let filter = Filter {
            app_id: "shop".into(),
            session_id: Some(session),
            to: Some(at("2021-01-02T00:00:00Z")),
            ..Filter::default()
        };
        let (sql, values) = filter.condition(Table::Events, 3);
        assert_eq!(
            sql,
            r#"app_id = $3 AND session_id = $4 AND "timestamp" < $5"#
        );
        assert_eq!(values.len(), 3);
        let (sql, _) = filter.condition(Table::DeadLetters, 1);
        assert!(
            sql.contains("payload->'event'->>'session_id' = $2"),
            "{sql}"
        );
        assert!(
            !sql.contains("raw"),
            "a narrower filter never matches bytes: {sql}"
        );
        let session_only = Filter {
            app_id: "shop".into(),
            session_id: Some(session),
            ..Filter::default()
        };
        let (sql, values) = session_only.condition(Table::DeadLetters, 1);
        assert_eq!(values.len(), 2);
        assert!(
            sql.contains("position(convert_to($2, 'UTF8') in raw)"),
            "{sql}"
        );
    }

    #[test]
    fn a_tombstone_covers_its_session_within_its_filter_only() {
        let session = Uuid::new_v4();
        let stone = Tombstone {
            erasure_id: Uuid::new_v4(),
            app_id: "shop".into(),
            session_id: Some(session),
            category: None,
            name: Some("pageview".into()),
            from: Some(at("2021-01-01T00:00:00Z")),
            to: None,
        };
        let event = Arrival {
            app_id: "shop",
            session_id: session,
            category: "page interaction",
            name: "pageview",
            timestamp: at("2021-01-01T09:00:00Z"),
        };
        assert!(stone.covers(&event));
        assert!(!stone.covers(&Arrival {
            app_id: "other",
            ..event
        }));
        assert!(!stone.covers(&Arrival {
            session_id: Uuid::new_v4(),
            ..event
        }));
        assert!(!stone.covers(&Arrival {
            name: "click",
            ..event
        }));
        assert!(!stone.covers(&Arrival {
            timestamp: at("2020-12-31T23:00:00Z"),
            ..event
        }));
    }

    #[test]
    fn a_tombstone_without_a_session_ends_at_its_confirmation() {
        let confirmed = at("2021-01-05T00:00:00Z");
        let filter = Filter {
            app_id: "shop".into(),
            from: Some(at("2021-01-01T00:00:00Z")),
            category: Some("page interaction".into()),
            ..Filter::default()
        };
        let stone = Tombstone::of(Uuid::new_v4(), filter.clone(), confirmed);
        assert_eq!(stone.to, Some(confirmed));
        let event = Arrival {
            app_id: "shop",
            session_id: Uuid::new_v4(),
            category: "page interaction",
            name: "pageview",
            timestamp: at("2021-01-02T09:00:00Z"),
        };
        assert!(stone.covers(&event), "any session within the range");
        assert!(!stone.covers(&Arrival {
            timestamp: at("2021-01-06T00:00:00Z"),
            ..event
        }));
        assert!(!stone.covers(&Arrival {
            category: "other",
            ..event
        }));
        let earlier = Filter {
            to: Some(at("2021-01-03T00:00:00Z")),
            ..filter.clone()
        };
        assert_eq!(
            Tombstone::of(Uuid::new_v4(), earlier, confirmed).to,
            Some(at("2021-01-03T00:00:00Z"))
        );
        let session = Filter {
            session_id: Some(Uuid::new_v4()),
            ..filter
        };
        assert_eq!(Tombstone::of(Uuid::new_v4(), session, confirmed).to, None);
    }
}
