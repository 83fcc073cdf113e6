//! The event rows of a batch, written set-based: the whole batch travels as one `jsonb`
//! parameter (unpacked by `jsonb_to_recordset`), and one statement claims the new ids in
//! `event_ids` and inserts their rows, in the caller's transaction. This replaced a
//! multi-row `INSERT ... RETURNING` into `event_ids` followed by a multi-row `INSERT` into
//! `events` (ten bind parameters a row, a round trip and a hash set in between): see
//! README, "Batches: make bench-batch", for the profile that chose it.
//!
//! `events` is partitioned by `stored_at`, so its primary key cannot make an id unique on its
//! own: `event_ids` (application, id) does. An id seen before, in whatever partition, claims
//! nothing and inserts nothing; so does the second copy of an id within the batch (the first
//! copy wins, as with a retry).

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use eye_core::Envelope;
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use serde::Serialize;
use uuid::Uuid;

/// The columns of `jsonb_to_recordset` over the batch document: an event row.
const RECORD: &str = "AS i(app_id text, id uuid, session_id uuid, category text, name text, \
     data jsonb, \"timestamp\" timestamptz, source text, received_at timestamptz)";

/// Columns written, in the order of [`RECORD`].
const COLUMNS: &str = "app_id, id, session_id, category, name, data, \"timestamp\", source, \
     received_at";

/// One event row of the batch document, borrowed from its envelope.
#[derive(Serialize)]
struct Row<'a> {
    app_id: &'a str,
    id: Uuid,
    session_id: Uuid,
    category: &'a str,
    name: &'a str,
    data: &'a serde_json::Map<String, serde_json::Value>,
    timestamp: String,
    source: String,
    received_at: String,
}

/// Microseconds, truncated like the binary encoding of the driver (PostgreSQL's precision).
fn micros(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl<'a> Row<'a> {
    fn of(envelope: &'a Envelope) -> Self {
        let e = &envelope.event;
        Row {
            app_id: &envelope.app_id,
            id: e.id,
            session_id: e.session_id,
            category: &e.category,
            name: &e.name,
            data: &e.data,
            timestamp: micros(&e.timestamp),
            source: envelope.source.to_string(),
            received_at: micros(&envelope.received_at),
        }
    }
}

/// The batch document of `events`: a JSON array of rows, each (application, id) once (the
/// first copy), and how many rows it holds.
fn document(events: &[&Envelope]) -> (String, u64) {
    let mut seen = HashSet::with_capacity(events.len());
    let rows: Vec<Row<'_>> = events
        .iter()
        .filter(|e| seen.insert((e.app_id.as_str(), e.event.id)))
        .map(|e| Row::of(e))
        .collect();
    // Serialising strings, uuids and a JSON map cannot fail.
    let json = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
    (json, rows.len() as u64)
}

/// Inserts the events not stored yet; how many were new.
pub(super) async fn insert<C: ConnectionTrait>(db: &C, events: &[&Envelope]) -> Result<u64, DbErr> {
    if events.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "WITH input AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($1::jsonb) {RECORD}), \
         claimed AS (INSERT INTO event_ids (app_id, id) SELECT app_id, id FROM input \
             ON CONFLICT DO NOTHING RETURNING app_id, id) \
         INSERT INTO events ({COLUMNS}) SELECT {input} FROM input i \
             JOIN claimed c ON c.app_id = i.app_id AND c.id = i.id",
        input = prefixed("i"),
    );
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [Value::from(document(events).0)],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Inserts the events, replacing those already stored (same application and id, in whatever
/// partition); how many were new. Each (application, id) should appear once (a later copy
/// is ignored). The new ids are claimed and inserted like [`insert`], in a statement that
/// answers the ids it found stored already; those rows are then replaced by one `UPDATE`
/// (a statement of its own, so it sees an id another transaction stored meanwhile).
pub(super) async fn upsert<C: ConnectionTrait>(db: &C, events: &[&Envelope]) -> Result<u64, DbErr> {
    if events.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "WITH input AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($1::jsonb) {RECORD}), \
         claimed AS (INSERT INTO event_ids (app_id, id) SELECT app_id, id FROM input \
             ON CONFLICT DO NOTHING RETURNING app_id, id), \
         inserted AS (INSERT INTO events ({COLUMNS}) SELECT {input} FROM input i \
             JOIN claimed c ON c.app_id = i.app_id AND c.id = i.id) \
         SELECT i.app_id, i.id FROM input i \
             WHERE NOT EXISTS (SELECT 1 FROM claimed c WHERE c.app_id = i.app_id AND c.id = i.id)",
        input = prefixed("i"),
    );
    let (doc, offered) = document(events);
    let seen = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(doc)],
        ))
        .await?;
    let seen: HashSet<(String, Uuid)> = seen
        .iter()
        .map(|r| Ok((r.try_get("", "app_id")?, r.try_get("", "id")?)))
        .collect::<Result<_, DbErr>>()?;
    let stored = offered - seen.len() as u64;
    if seen.is_empty() {
        return Ok(stored);
    }
    let replaced: Vec<&Envelope> = events
        .iter()
        .filter(|e| seen.contains(&(e.app_id.clone(), e.event.id)))
        .copied()
        .collect();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE events e SET session_id = i.session_id, category = i.category, \
                 name = i.name, data = i.data, \"timestamp\" = i.\"timestamp\", \
                 source = i.source, received_at = i.received_at \
             FROM jsonb_to_recordset($1::jsonb) {RECORD} \
             WHERE e.app_id = i.app_id AND e.id = i.id"
        ),
        [Value::from(document(&replaced).0)],
    ))
    .await?;
    Ok(stored)
}

/// [`COLUMNS`], each prefixed with a table alias.
fn prefixed(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(id: &str, name: &str) -> Envelope {
        serde_json::from_value(json!({
            "app_id": "app",
            "source": "http",
            "received_at": "2024-01-01T00:00:00.123456789Z",
            "event": {
                "id": id,
                "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
                "category": "c", "name": name, "data": {"k": [1, "x"]},
                "timestamp": "2024-01-01T00:00:00.5Z"
            }
        }))
        .expect("envelope")
    }

    #[test]
    fn the_document_keeps_the_first_copy_of_an_id_and_microseconds() {
        let a = envelope("0190a5a0-0000-7000-8000-000000000001", "first");
        let again = envelope("0190a5a0-0000-7000-8000-000000000001", "second");
        let b = envelope("0190a5a0-0000-7000-8000-000000000002", "other");
        let doc: serde_json::Value =
            serde_json::from_str(&document(&[&a, &again, &b]).0).expect("json");
        let rows = doc.as_array().expect("array");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["name"], "first");
        assert_eq!(rows[0]["data"], json!({"k": [1, "x"]}));
        assert_eq!(rows[0]["received_at"], "2024-01-01T00:00:00.123456Z");
        assert_eq!(rows[0]["timestamp"], "2024-01-01T00:00:00.500000Z");
        assert_eq!(rows[1]["source"], "http");
    }
}
