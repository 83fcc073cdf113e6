//! Keeps `webhook_deliveries` fit as a work queue. Every delivery is inserted, claimed and
//! recorded within about a second, leaving a dead row version and dead index entries that
//! each claim walks past until a vacuum removes them. The table's own autovacuum settings
//! (migration `m20261204_060000_webhook_leases`) cover a server where autovacuum runs; where
//! it is off, or its workers are busy elsewhere, the dispatcher vacuums the table itself once
//! the statistics count `dead_rows` dead versions. `SKIP_LOCKED`: a vacuum already running
//! (autovacuum's, or another dispatcher's) is left to finish, not waited for.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio_util::sync::CancellationToken;

/// Checks every `every` until `stop`; vacuums (and analyzes) once `dead_rows` are counted.
pub async fn run(db: DatabaseConnection, every: Duration, dead_rows: u64, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match vacuum_if_due(&db, dead_rows).await {
            Ok(Some(dead)) => tracing::debug!(dead, "vacuumed webhook_deliveries"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot vacuum webhook_deliveries"),
        }
    }
}

/// Vacuums the table when its statistics count at least `dead_rows` dead versions; returns
/// the count it acted on.
pub async fn vacuum_if_due(db: &DatabaseConnection, dead_rows: u64) -> Result<Option<i64>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT n_dead_tup FROM pg_stat_user_tables \
             WHERE relid = 'webhook_deliveries'::regclass",
        ))
        .await?;
    let dead: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => return Ok(None),
    };
    if u64::try_from(dead).unwrap_or(0) < dead_rows {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    db.execute_unprepared("VACUUM (ANALYZE, SKIP_LOCKED) webhook_deliveries")
        .await?;
    metrics::histogram!("eye_webhook_vacuum_seconds").record(started.elapsed());
    Ok(Some(dead))
}
