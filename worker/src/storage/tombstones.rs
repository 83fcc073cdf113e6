//! The tombstones' check on the hot path: every commit takes the erasure lock shared
//! ([`ERASURE_LOCK`]), then looks up the tombstones of the sessions in its batch (an index
//! lookup on the tombstones' primary key, usually finding none) in the same transaction. An
//! event a tombstone covers is not stored: it is counted as suppressed on its erasure (and
//! `eye_worker_suppressed_total`), never silently dropped.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use eye_core::erasure::{Arrival, ERASURE_LOCK, Tombstone};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

/// (application, session) pairs looked up per statement: two bind parameters each.
const KEYS_PER_STATEMENT: usize = 10_000;

#[derive(Debug, FromQueryResult)]
struct TombstoneRow {
    erasure_id: Uuid,
    app_id: String,
    session_id: Uuid,
    category: Option<String>,
    name: Option<String>,
    time_from: Option<DateTime<Utc>>,
    time_to: Option<DateTime<Utc>>,
}

/// Takes the erasure lock (shared, until `txn` ends) and says, for each arrival, whether a
/// confirmed erasure covers it; the covered ones are counted on their erasures. `None` is an
/// arrival with no readable session (an undecodable message): never covered.
pub async fn screen<C: ConnectionTrait>(
    txn: &C,
    arrivals: &[Option<Arrival<'_>>],
) -> Result<Vec<bool>, DbErr> {
    let backend = txn.get_database_backend();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "SELECT pg_advisory_xact_lock_shared($1)",
        [ERASURE_LOCK.into()],
    ))
    .await?;
    let keys: Vec<(&str, Uuid)> = arrivals
        .iter()
        .flatten()
        .map(|a| (a.app_id, a.session_id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut stones: Vec<Tombstone> = Vec::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|(app, session)| [(*app).into(), (*session).into()])
            .collect();
        let sql = format!(
            "SELECT erasure_id, app_id, session_id, category, name, time_from, time_to \
             FROM erasure_tombstones WHERE (app_id, session_id) IN ({})",
            tuples.join(", ")
        );
        let rows =
            TombstoneRow::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
                .all(txn)
                .await?;
        stones.extend(rows.into_iter().map(|r| Tombstone {
            erasure_id: r.erasure_id,
            app_id: r.app_id,
            session_id: r.session_id,
            category: r.category,
            name: r.name,
            from: r.time_from,
            to: r.time_to,
        }));
    }
    if stones.is_empty() {
        return Ok(vec![false; arrivals.len()]);
    }
    let mut counts: HashMap<Uuid, i64> = HashMap::new();
    let covered: Vec<bool> = arrivals
        .iter()
        .map(|arrival| {
            let stone = arrival
                .as_ref()
                .and_then(|a| stones.iter().find(|s| s.covers(a)));
            if let Some(stone) = stone {
                *counts.entry(stone.erasure_id).or_default() += 1;
            }
            stone.is_some()
        })
        .collect();
    for (erasure, n) in counts {
        metrics::counter!("eye_worker_suppressed_total").increment(n as u64);
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE erasures SET suppressed = suppressed + $2 WHERE id = $1",
            [erasure.into(), n.into()],
        ))
        .await?;
    }
    Ok(covered)
}

/// The arrival of an event kept as an envelope's JSON (a poisoned row's `payload`).
pub fn arrival_of<'a>(app_id: &'a str, payload: &'a serde_json::Value) -> Option<Arrival<'a>> {
    let event = payload.get("event")?;
    Some(Arrival {
        app_id,
        session_id: event.get("session_id")?.as_str()?.parse().ok()?,
        category: event.get("category")?.as_str()?,
        name: event.get("name")?.as_str()?,
        timestamp: event.get("timestamp")?.as_str()?.parse().ok()?,
    })
}
