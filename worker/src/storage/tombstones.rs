//! The tombstones' check on the hot path. Every commit takes the erasure lock shared
//! ([`ERASURE_LOCK`]) and then, in a second statement (a new snapshot under READ COMMITTED),
//! reads the one-row erasure generation. The worker keeps every confirmed erasure's filter in
//! memory ([`Tombstone`]), tagged with the generation it was loaded at, and reloads them (in
//! the same transaction, still under the lock) only when the generation moved: a confirmation
//! adds one to it in its own transaction, under the lock held exclusively. So the per-batch
//! cost is two tiny prepared statements, whatever the batch's sessions, and the batch is
//! checked in memory (a hash lookup per event, nothing at all for an application that never
//! erased anything). An event a tombstone covers is not stored: it is counted as suppressed on
//! its erasure (and `eye_worker_suppressed_total`), never silently dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use eye_core::erasure::{Arrival, ERASURE_LOCK, Filter, Tombstone};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};
use uuid::Uuid;

/// The tombstones of one application.
#[derive(Debug, Default)]
struct AppStones {
    /// Erasures of a session, by session.
    by_session: HashMap<Uuid, Vec<Tombstone>>,
    /// Erasures without a session (a time range, maybe a category or name), checked against
    /// every event of the application.
    filters: Vec<Tombstone>,
}

impl AppStones {
    fn covering(&self, arrival: &Arrival<'_>) -> Option<&Tombstone> {
        self.by_session
            .get(&arrival.session_id)
            .into_iter()
            .flatten()
            .chain(&self.filters)
            .find(|stone| stone.covers(arrival))
    }
}

type ByApp = HashMap<String, AppStones>;

/// Every confirmed erasure's tombstone as of a generation.
#[derive(Debug, Default)]
struct Known {
    generation: Option<i64>,
    apps: Arc<ByApp>,
}

/// The worker's copy of the tombstones, shared by its consumers.
#[derive(Debug, Clone, Default)]
pub struct Tombstones {
    known: Arc<Mutex<Known>>,
}

#[derive(Debug, FromQueryResult)]
struct ErasureRow {
    id: Uuid,
    app_id: String,
    session_id: Option<Uuid>,
    category: Option<String>,
    name: Option<String>,
    time_from: Option<DateTime<Utc>>,
    time_to: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, FromQueryResult)]
struct GenerationRow {
    generation: i64,
}

impl Tombstones {
    /// Takes the erasure lock (shared, until `txn` ends) and says, for each arrival, whether a
    /// confirmed erasure covers it; the covered ones are counted on their erasures. `None` is
    /// an arrival with no readable session (an undecodable message): never covered.
    pub async fn screen<C: ConnectionTrait>(
        &self,
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
        // A statement of its own: its snapshot is taken once the lock is held, so it sees
        // every confirmation committed before.
        let generation = GenerationRow::find_by_statement(Statement::from_string(
            backend,
            "SELECT generation FROM erasure_generation",
        ))
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::Custom("erasure_generation has no row".into()))?
        .generation;
        let apps = self.at(txn, generation).await?;
        if apps.is_empty() {
            return Ok(vec![false; arrivals.len()]);
        }
        let mut counts: HashMap<Uuid, i64> = HashMap::new();
        let covered: Vec<bool> = arrivals
            .iter()
            .map(|arrival| {
                let stone = arrival
                    .as_ref()
                    .and_then(|a| apps.get(a.app_id).and_then(|stones| stones.covering(a)));
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

    /// The tombstones at `generation`: the copy in memory, or a reload (under the lock held
    /// by the caller's transaction, so no confirmation can commit in between).
    async fn at<C: ConnectionTrait>(&self, txn: &C, generation: i64) -> Result<Arc<ByApp>, DbErr> {
        {
            let known = self.known.lock().expect("tombstones lock");
            if known.generation == Some(generation) {
                return Ok(known.apps.clone());
            }
        }
        let rows = ErasureRow::find_by_statement(Statement::from_string(
            txn.get_database_backend(),
            "SELECT id, app_id, session_id, category, name, time_from, time_to, confirmed_at \
             FROM erasures WHERE status <> 'pending'",
        ))
        .all(txn)
        .await?;
        let mut apps = ByApp::new();
        for row in rows {
            let filter = Filter {
                app_id: row.app_id.clone(),
                session_id: row.session_id,
                category: row.category,
                name: row.name,
                from: row.time_from,
                to: row.time_to,
            };
            let stone = Tombstone::of(row.id, filter, row.confirmed_at.unwrap_or_else(Utc::now));
            let stones = apps.entry(row.app_id).or_default();
            match stone.session_id {
                Some(session) => stones.by_session.entry(session).or_default().push(stone),
                None => stones.filters.push(stone),
            }
        }
        let apps = Arc::new(apps);
        tracing::info!(generation, "erasure tombstones loaded");
        let mut known = self.known.lock().expect("tombstones lock");
        // Generations only grow: a slower reload of an older one does not overwrite.
        if known.generation.is_none_or(|g| g < generation) {
            *known = Known {
                generation: Some(generation),
                apps: apps.clone(),
            };
        }
        Ok(apps)
    }
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
