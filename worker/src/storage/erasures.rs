//! The deleter's queries: claim a confirmed erasure (FOR UPDATE SKIP LOCKED, with a lease so
//! another worker takes over from one that died), delete one bounded chunk by primary key and
//! count it in the same statement, and close the erasure.

use chrono::{DateTime, Utc};
use eye_core::erasure::{Filter, STATUS_CONFIRMED, STATUS_DONE, STATUS_RUNNING, Table};
use eye_core::webhook::KIND_ERASED;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use super::Store;

/// How long a claimed erasure is held without progress before another worker may take it.
const LEASE: &str = "interval '60 seconds'";

/// An erasure a worker is deleting.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub filter: Filter,
}

#[derive(Debug, FromQueryResult)]
struct ClaimedRow {
    id: Uuid,
    app_id: String,
    session_id: Option<Uuid>,
    category: Option<String>,
    name: Option<String>,
    time_from: Option<DateTime<Utc>>,
    time_to: Option<DateTime<Utc>>,
}

/// Where a pass over a table has got to: the last key deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// `events`, in `("timestamp", id)` order (the order of the indexes the filter uses).
    Events(DateTime<Utc>, Uuid),
    /// `dead_letters`, by id.
    DeadLetters(Uuid),
}

impl Cursor {
    pub fn start(table: Table) -> Self {
        match table {
            // Before every storable timestamp (years 1 to 9999).
            Table::Events => Cursor::Events(
                chrono::NaiveDate::from_ymd_opt(0, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc()),
                Uuid::nil(),
            ),
            Table::DeadLetters => Cursor::DeadLetters(Uuid::nil()),
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct ChunkRow {
    deleted: i64,
    last_time: Option<DateTime<Utc>>,
    last_id: Uuid,
}

impl Store {
    /// Takes the oldest confirmed erasure no live worker holds, or None.
    pub async fn claim_erasure(&self) -> Result<Option<Claimed>, DbErr> {
        let sql = format!(
            "UPDATE erasures SET status = '{STATUS_RUNNING}', \
                 started_at = coalesce(started_at, now()), lease_until = now() + {LEASE} \
             WHERE id = (SELECT id FROM erasures \
                 WHERE status IN ('{STATUS_CONFIRMED}', '{STATUS_RUNNING}') \
                   AND (lease_until IS NULL OR lease_until < now()) \
                 ORDER BY confirmed_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, app_id, session_id, category, name, time_from, time_to"
        );
        let row = ClaimedRow::find_by_statement(Statement::from_string(
            self.db.get_database_backend(),
            sql,
        ))
        .one(&self.db)
        .await?;
        Ok(row.map(|r| Claimed {
            id: r.id,
            filter: Filter {
                app_id: r.app_id,
                session_id: r.session_id,
                category: r.category,
                name: r.name,
                from: r.time_from,
                to: r.time_to,
            },
        }))
    }

    /// Deletes up to `limit` rows of `table` matching the erasure after `after`, adds them to
    /// its progress and renews its lease, in one statement; the new cursor, or None once
    /// nothing is left.
    pub async fn erase_chunk(
        &self,
        erasure: &Claimed,
        after: Cursor,
        limit: u32,
    ) -> Result<Option<(u64, Cursor)>, DbErr> {
        let table = match after {
            Cursor::Events(..) => Table::Events,
            Cursor::DeadLetters(_) => Table::DeadLetters,
        };
        let (condition, mut values) = erasure.filter.condition(table, 1);
        let n = values.len();
        let (from, columns, order, key, join, counter, last_time) = match after {
            Cursor::Events(time, id) => {
                values.extend([Value::from(time), Value::from(id)]);
                (
                    "events",
                    r#"app_id, id, "timestamp", stored_at"#,
                    r#""timestamp", id"#,
                    format!(r#"("timestamp", id) > (${}, ${})"#, n + 1, n + 2),
                    // With the partition key, each row is looked up in its own partition.
                    "t.app_id = d.app_id AND t.id = d.id AND t.stored_at = d.stored_at",
                    "deleted_events",
                    r#"d."timestamp""#,
                )
            }
            Cursor::DeadLetters(id) => {
                values.push(Value::from(id));
                (
                    "dead_letters",
                    "id",
                    "id",
                    format!("id > ${}", n + 1),
                    "t.id = d.id",
                    "deleted_dead_letters",
                    "NULL::timestamptz",
                )
            }
        };
        let next = values.len();
        values.extend([Value::from(i64::from(limit)), Value::from(erasure.id)]);
        let sql = format!(
            "WITH doomed AS (SELECT {columns} FROM {from} WHERE {condition} AND {key} \
                 ORDER BY {order} LIMIT ${limit_at}), \
             gone AS (DELETE FROM {from} t USING doomed d WHERE {join} RETURNING 1), \
             progress AS (UPDATE erasures SET {counter} = {counter} + (SELECT count(*) FROM gone), \
                 lease_until = now() + {LEASE} WHERE id = ${id_at}) \
             SELECT (SELECT count(*) FROM gone) AS deleted, {last_time} AS last_time, d.id AS last_id \
             FROM doomed d ORDER BY {order_d} DESC LIMIT 1",
            limit_at = next + 1,
            id_at = next + 2,
            order_d = order
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(" DESC, "),
        );
        let row = ChunkRow::find_by_statement(Statement::from_sql_and_values(
            self.db.get_database_backend(),
            sql,
            values,
        ))
        .one(&self.db)
        .await?;
        Ok(row.map(|r| {
            let cursor = match (after, r.last_time) {
                (Cursor::Events(..), Some(time)) => Cursor::Events(time, r.last_id),
                _ => Cursor::DeadLetters(r.last_id),
            };
            (r.deleted as u64, cursor)
        }))
    }

    /// Marks the erasure done.
    pub async fn finish_erasure(&self, erasure: &Claimed) -> Result<(), DbErr> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                // The `event.erased` notification of each enabled webhook subscription of
                // the application is written with the status, in the same statement: the
                // filter and the counts, never the erased data.
                format!(
                    "WITH done AS (UPDATE erasures SET status = '{STATUS_DONE}', \
                       completed_at = now(), lease_until = NULL WHERE id = $1 RETURNING *) \
                     INSERT INTO webhook_deliveries (subscription_id, event_id, app_id, kind, payload) \
                     SELECT s.id, done.id, done.app_id, '{KIND_ERASED}', jsonb_build_object( \
                       'erasure_id', done.id, 'app_id', done.app_id, \
                       'filter', jsonb_strip_nulls(jsonb_build_object('session_id', done.session_id, \
                         'category', done.category, 'name', done.name, 'from', done.time_from, \
                         'to', done.time_to)), \
                       'deleted_events', done.deleted_events, \
                       'deleted_dead_letters', done.deleted_dead_letters, \
                       'suppressed', done.suppressed, 'completed_at', done.completed_at) \
                     FROM done JOIN webhook_subscriptions s ON s.app_id = done.app_id AND s.enabled \
                     ON CONFLICT (subscription_id, event_id) DO NOTHING"
                ),
                [erasure.id.into()],
            ))
            .await?;
        Ok(())
    }
}
