//! Scheduled exports: a definition runs every `every_secs`, by one process at a time however
//! many replicas poll. Taking a due slot is one UPDATE of the schedule's row that moves its
//! next run and sets a lease (`FOR UPDATE SKIP LOCKED`, re-checked on the row's newest
//! version): of two processes racing, one gets the row, the other nothing. The lease keeps
//! a slow run from being started again before it ends, and expires if its process dies.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

use crate::runs::{self, Run};
use crate::spec::ExportSpec;
use crate::{ExportError, Exporter};

/// Creates or replaces schedule `spec.name`, first due now.
pub async fn upsert(
    db: &DatabaseConnection,
    spec: &ExportSpec,
    every: Duration,
) -> Result<(), ExportError> {
    spec.validate()?;
    let every_secs = i32::try_from(every.as_secs().max(1)).unwrap_or(i32::MAX);
    let spec_json =
        serde_json::to_value(spec).map_err(|e| ExportError::Destination(e.to_string()))?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO export_schedules (name, spec, every_secs, next_run_at) \
         VALUES ($1, $2, $3, now()) \
         ON CONFLICT (name) DO UPDATE SET spec = $2, every_secs = $3",
        [
            spec.name.clone().into(),
            spec_json.into(),
            every_secs.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// A schedule as stored.
#[derive(Debug, Clone, sea_orm::FromQueryResult, serde::Serialize)]
pub struct ScheduleRow {
    pub name: String,
    pub spec: serde_json::Value,
    pub every_secs: i32,
    pub next_run_at: chrono::DateTime<chrono::Utc>,
    pub lease_owner: Option<String>,
}

/// Every schedule, by name (the console's Exports page).
pub async fn list(db: &DatabaseConnection) -> Result<Vec<ScheduleRow>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT name, spec, every_secs, next_run_at, lease_owner FROM export_schedules \
             ORDER BY name LIMIT 1000",
        ))
        .await?;
    rows.iter()
        .map(|row| sea_orm::FromQueryResult::from_query_result(row, ""))
        .collect()
}

/// Takes one due schedule for `owner` (moving its next run on and leasing it), creating its
/// pending run in the same transaction; None when nothing is due or another process took it.
pub async fn take_due(
    db: &DatabaseConnection,
    owner: &str,
    lease: Duration,
) -> Result<Option<Run>, ExportError> {
    let txn = sea_orm::TransactionTrait::begin(db).await?;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE export_schedules SET \
                 next_run_at = greatest(next_run_at + make_interval(secs => every_secs), now()), \
                 lease_owner = $1, lease_until = now() + make_interval(secs => $2) \
             WHERE name = (SELECT name FROM export_schedules \
                 WHERE next_run_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
                 ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
               AND next_run_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
             RETURNING name, spec",
            [owner.into(), lease.as_secs_f64().into()],
        ))
        .await?;
    let Some(row) = row else {
        txn.commit().await?;
        return Ok(None);
    };
    let name: String = row.try_get("", "name")?;
    let spec: serde_json::Value = row.try_get("", "spec")?;
    let spec: ExportSpec = serde_json::from_value(spec)
        .map_err(|e| ExportError::Destination(format!("schedule {name}: spec unreadable: {e}")))?;
    let run = runs::create(&txn, &spec, Some(&name)).await?;
    txn.commit().await?;
    Ok(Some(run))
}

/// Ends `owner`'s lease on schedule `name`.
pub async fn release(db: &DatabaseConnection, name: &str, owner: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE export_schedules SET lease_owner = NULL, lease_until = NULL \
         WHERE name = $1 AND lease_owner = $2",
        [name.into(), owner.into()],
    ))
    .await?;
    Ok(())
}

impl Exporter {
    /// One round of the daemon: a due schedule, else a pending (or abandoned) run; runs it.
    /// Returns whether there was something to do.
    pub async fn poll_once(&self) -> Result<bool, ExportError> {
        let quiet = |_| {};
        if let Some(run) = take_due(&self.db, &self.owner, self.lease).await? {
            let schedule = run.schedule_name.clone().unwrap_or_default();
            let result = self.run_by_id(run.id, &quiet).await;
            release(&self.db, &schedule, &self.owner).await?;
            result?;
            return Ok(true);
        }
        match runs::claim_next(&self.db, &self.owner, self.lease).await? {
            Some(run) => {
                self.run_claimed(run, &quiet).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Polls until `stop` fires; an export's failure is recorded on its row and logged.
    pub async fn serve(&self, every: Duration, stop: tokio_util::sync::CancellationToken) {
        loop {
            let busy = match self.poll_once().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "export round failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            } else if stop.is_cancelled() {
                return;
            }
        }
    }
}
