//! The fetcher's own record of its cycles, in PostgreSQL (`fetch_cycles`): when each ran,
//! how it ended, what it counted, its error and the circuit's state after it. What the
//! console's "Provider plans" page shows as each provider's fetch history; the metrics
//! ([`crate::monitoring`]) are the same facts as counters. A failure to write it is logged,
//! never a failed cycle; each provider keeps its last [`KEEP`] rows.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::{CycleError, CycleReport};

/// Rows kept per provider.
pub const KEEP: i64 = 500;

const INSERT: &str = "INSERT INTO fetch_cycles \
     (provider, started_at, took_ms, outcome, records, changed, removed, rejected, error, \
      circuit_open, failures) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";

/// Drops the provider's rows older than its last $2.
const TRIM: &str = "DELETE FROM fetch_cycles WHERE provider = $1 AND id < \
     (SELECT id FROM fetch_cycles WHERE provider = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)";

/// The cycle log of one database.
#[derive(Debug, Clone)]
pub struct History {
    db: DatabaseConnection,
}

impl History {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records one cycle of `provider`; `circuit` is (open, failures in a row) after it.
    pub async fn record(
        &self,
        provider: &str,
        started_at: DateTime<Utc>,
        took: Duration,
        outcome: &Result<CycleReport, CycleError>,
        circuit: (bool, u32),
    ) {
        if let Err(e) = self
            .write(provider, started_at, took, outcome, circuit)
            .await
        {
            tracing::warn!(provider, error = %e, "the cycle could not be recorded in fetch_cycles");
        }
    }

    async fn write(
        &self,
        provider: &str,
        started_at: DateTime<Utc>,
        took: Duration,
        outcome: &Result<CycleReport, CycleError>,
        (circuit_open, failures): (bool, u32),
    ) -> Result<(), sea_orm::DbErr> {
        let empty = CycleReport::default();
        let (name, report, error) = match outcome {
            Ok(r) => match (&r.document_error, &r.removals_refused) {
                (None, None) => ("ok", r, None),
                (Some(e), None) => ("document", r, Some(e.clone())),
                (None, Some(refused)) => ("refused", r, Some(refused.clone())),
                (Some(e), Some(refused)) => ("document", r, Some(format!("{e}; {refused}"))),
            },
            Err(e) => ("failed", &empty, Some(format!("{}: {e}", e.reason()))),
        };
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                INSERT,
                [
                    provider.into(),
                    started_at.into(),
                    i64::try_from(took.as_millis()).unwrap_or(i64::MAX).into(),
                    name.into(),
                    count(report.plans).into(),
                    count(report.changed).into(),
                    count(report.removed).into(),
                    count(report.rejected).into(),
                    error.map(|e| e.replace('\0', "\\u0000")).into(),
                    circuit_open.into(),
                    i32::try_from(failures).unwrap_or(i32::MAX).into(),
                ],
            ))
            .await?;
        let id: i64 = match row {
            Some(row) => row.try_get("", "id")?,
            None => return Ok(()),
        };
        // Now and then: an index scan of the provider's last rows.
        if id % 20 == 0 {
            self.db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    TRIM,
                    [provider.into(), KEEP.into()],
                ))
                .await?;
        }
        Ok(())
    }
}
