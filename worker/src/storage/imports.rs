//! The importer's queries: claim a staged import under a lease (FOR UPDATE SKIP LOCKED, like
//! the erasure deleter), read the next chunk of staged rows after the checkpoint, and commit a
//! chunk: its events, dead letters, refused rows, counters and checkpoint in one transaction,
//! only while this worker still holds the lease and the import is still running.

use chrono::{DateTime, Utc};
use eye_core::import::{ImportSpec, Keep, STATE_FAILED, STATE_QUEUED, STATE_RUNNING};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement, TransactionTrait, Value};
use uuid::Uuid;

use super::{Committed, Store};
use crate::pipeline::Verdict;

/// An import a worker is running.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub app_id: String,
    pub spec: ImportSpec,
    pub checkpoint: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, FromQueryResult)]
struct ClaimedRow {
    id: Uuid,
    app_id: String,
    spec: serde_json::Value,
    checkpoint: i64,
    created_at: DateTime<Utc>,
}

/// A staged row: its number in the file and its text.
#[derive(Debug, FromQueryResult)]
pub struct Staged {
    pub row_no: i64,
    pub line: String,
}

/// A row refused by the mapping or a validator.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub row_no: i64,
    pub column: String,
    pub message: String,
    pub line: String,
}

/// One chunk, judged: what the transaction writes.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The last row number of the chunk: the checkpoint once committed.
    pub last_row: i64,
    pub read: u64,
    /// Valid events to store, each id once (the winner of the chunk's duplicates).
    pub winners: Vec<Verdict>,
    /// Valid rows that lost to another row of the chunk with the same id.
    pub duplicates_in_chunk: u64,
    /// Events refused by a validator (dead letters), beside `refusals`.
    pub refused_events: Vec<Verdict>,
    pub refusals: Vec<Refusal>,
}

/// What became of committing a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed(Committed),
    /// The import was cancelled, or another worker holds it now: nothing was written.
    Lost,
}

#[derive(Debug, FromQueryResult)]
struct StateRow {
    state: String,
}

impl Store {
    /// Takes the oldest staged import no live worker holds, or None, leasing it to `owner`.
    pub async fn claim_import(
        &self,
        owner: Uuid,
        lease_secs: u64,
    ) -> Result<Option<Claimed>, DbErr> {
        let sql = format!(
            "UPDATE imports SET state = '{STATE_RUNNING}', started_at = coalesce(started_at, now()), \
                 lease_owner = $1, lease_until = now() + make_interval(secs => $2), \
                 attempts = attempts + 1, version = version + 1, updated_at = now() \
             WHERE id = (SELECT id FROM imports \
                 WHERE state IN ('{STATE_QUEUED}', '{STATE_RUNNING}') AND staged_rows IS NOT NULL \
                   AND (lease_until IS NULL OR lease_until < now()) \
                 ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, app_id, spec, checkpoint, created_at"
        );
        let row = ClaimedRow::find_by_statement(Statement::from_sql_and_values(
            self.db.get_database_backend(),
            sql,
            [owner.into(), (lease_secs as f64).into()],
        ))
        .one(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        match serde_json::from_value::<ImportSpec>(row.spec) {
            Ok(spec) => Ok(Some(Claimed {
                id: row.id,
                app_id: row.app_id,
                spec,
                checkpoint: row.checkpoint,
                created_at: row.created_at,
            })),
            Err(e) => {
                self.close_import(
                    row.id,
                    owner,
                    STATE_FAILED,
                    Some(&format!("unreadable spec: {e}")),
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Fails the imports whose upload has not moved for `stale_secs` (`queued` without
    /// `staged_rows`: the api staging it died, or lost its database) and drops what they
    /// staged; how many.
    pub async fn sweep_abandoned_uploads(&self, stale_secs: u64) -> Result<u64, DbErr> {
        let sql = format!(
            "WITH gone AS (UPDATE imports SET state = '{STATE_FAILED}', \
                 error = 'the upload never completed (no data for ' || $1 || ' s); nothing of it \
                 was imported', finished_at = now(), version = version + 1, updated_at = now() \
               WHERE state = '{STATE_QUEUED}' AND staged_rows IS NULL \
                 AND updated_at < now() - make_interval(secs => $1::double precision) \
               RETURNING id), \
             dropped AS (DELETE FROM import_rows WHERE import_id IN (SELECT id FROM gone)) \
             SELECT count(*) AS n FROM gone"
        );
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                self.db.get_database_backend(),
                sql,
                [(stale_secs as i64).into()],
            ))
            .await?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Up to `limit` staged rows after `after`, in file order.
    pub async fn staged_rows(
        &self,
        id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Staged>, DbErr> {
        Staged::find_by_statement(Statement::from_sql_and_values(
            self.db.get_database_backend(),
            "SELECT row_no, line FROM import_rows WHERE import_id = $1 AND row_no > $2 \
             ORDER BY row_no LIMIT $3",
            [id.into(), after.into(), i64::from(limit).into()],
        ))
        .all(&self.db)
        .await
    }

    /// Commits a chunk in one transaction: checks the lease and the state (locking the import's
    /// row, so a cancellation waits for it or wins before it), stores the events (with the
    /// tombstones' check), writes the dead letters and refused rows, adds the counters and
    /// moves the checkpoint. A crash before the commit leaves nothing of the chunk; after it,
    /// the checkpoint says the chunk is done.
    pub async fn commit_import_chunk(
        &self,
        import: &Claimed,
        owner: Uuid,
        lease_secs: u64,
        chunk: &Chunk,
    ) -> Result<Outcome, DbErr> {
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        let state = StateRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            "SELECT state FROM imports WHERE id = $1 AND lease_owner = $2 FOR UPDATE",
            [import.id.into(), owner.into()],
        ))
        .one(&txn)
        .await?;
        if state.is_none_or(|s| s.state != STATE_RUNNING) {
            txn.rollback().await?;
            return Ok(Outcome::Lost);
        }
        let mut verdicts: Vec<&Verdict> = chunk.winners.iter().collect();
        verdicts.extend(chunk.refused_events.iter());
        let done = self
            .write_in(&txn, &verdicts, import.spec.dedup.keep)
            .await?;
        for part in chunk.refusals.chunks(10_000) {
            let mut values: Vec<Value> = Vec::with_capacity(part.len() * 4 + 1);
            values.push(import.id.into());
            let tuples: Vec<String> = part
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    values.extend([
                        r.row_no.into(),
                        clean(&r.column).into(),
                        clean(&r.message).into(),
                        clean(&r.line).into(),
                    ]);
                    format!(
                        "($1, ${}, ${}, ${}, ${})",
                        4 * i + 2,
                        4 * i + 3,
                        4 * i + 4,
                        4 * i + 5
                    )
                })
                .collect();
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO import_refused (import_id, row_no, \"column\", message, line) \
                     VALUES {} ON CONFLICT DO NOTHING",
                    tuples.join(", ")
                ),
                values,
            ))
            .await?;
        }
        let refused = chunk.refusals.len() as i64;
        let accepted = chunk.read as i64 - refused;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE imports SET rows_read = rows_read + $2, accepted = accepted + $3, \
                 refused = refused + $4, stored = stored + $5, duplicates = duplicates + $6, \
                 suppressed = suppressed + $7, checkpoint = $8, version = version + 1, \
                 updated_at = now(), lease_until = now() + make_interval(secs => $9) \
             WHERE id = $1",
            [
                import.id.into(),
                (chunk.read as i64).into(),
                accepted.into(),
                refused.into(),
                (done.stored as i64).into(),
                ((done.duplicates + chunk.duplicates_in_chunk) as i64).into(),
                (done.suppressed as i64).into(),
                chunk.last_row.into(),
                (lease_secs as f64).into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(Outcome::Committed(done))
    }

    /// Ends the import (done or failed) if `owner` still holds it running, and drops its staged
    /// rows once it is over (also those of an import cancelled meanwhile; never those of an
    /// import another worker has taken over).
    pub async fn close_import(
        &self,
        id: Uuid,
        owner: Uuid,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE imports SET state = $3, error = $4, finished_at = now(), \
                         version = version + 1, updated_at = now(), lease_until = NULL \
                     WHERE id = $1 AND lease_owner = $2 AND state = '{STATE_RUNNING}'"
                ),
                [
                    id.into(),
                    owner.into(),
                    state.into(),
                    error.map(clean).into(),
                ],
            ))
            .await?;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM import_rows WHERE import_id = $1 AND EXISTS (SELECT 1 FROM imports \
                 WHERE id = $1 AND state NOT IN ('queued', 'running'))",
                [id.into()],
            ))
            .await?;
        Ok(())
    }
}

/// Text PostgreSQL accepts (no NUL).
fn clean(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

/// Keeps each id once among the valid verdicts, by the import's rule; the losers are counted.
pub fn dedup(verdicts: Vec<Verdict>, keep: Keep) -> (Vec<Verdict>, u64) {
    let mut at: std::collections::HashMap<Uuid, usize> =
        std::collections::HashMap::with_capacity(verdicts.len());
    let mut kept: Vec<Option<Verdict>> = Vec::with_capacity(verdicts.len());
    let mut losers = 0;
    for verdict in verdicts {
        let Verdict::Store { envelope, .. } = &verdict else {
            kept.push(Some(verdict));
            continue;
        };
        match at.get(&envelope.event.id) {
            Some(&i) => {
                losers += 1;
                if keep == Keep::Last {
                    kept[i] = Some(verdict);
                }
            }
            None => {
                at.insert(envelope.event.id, kept.len());
                kept.push(Some(verdict));
            }
        }
    }
    (kept.into_iter().flatten().collect(), losers)
}
