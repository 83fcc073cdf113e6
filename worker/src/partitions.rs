//! Partition maintenance: a background task of every worker that keeps the partitions of
//! `events` ahead of time and drops those past retention, at start and then every
//! EYE_PARTITION_MAINTENANCE_SECS. Workers share it through a lease (one run at a time);
//! the worker being the only writer of `events`, a running one keeps its own inserts covered.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::settings::WorkerSettings;
use crate::storage::Store;

/// Runs maintenance until `shutdown`; a failed run is logged and tried again after a minute
/// (the partitions ahead leave days of margin).
pub async fn run(settings: &WorkerSettings, store: &Store, shutdown: &CancellationToken) {
    let every = Duration::from_secs(settings.partition_maintenance_secs);
    let policy = settings.partition_policy();
    while !shutdown.is_cancelled() {
        let wait = match store.maintain_partitions(policy, chrono::Utc::now()).await {
            Ok(Some(report)) => {
                metrics::counter!("eye_worker_partitions_created_total")
                    .increment(report.created.len() as u64);
                metrics::counter!("eye_worker_partitions_dropped_total")
                    .increment(report.dropped.len() as u64);
                if report.created.is_empty() && report.dropped.is_empty() {
                    tracing::debug!("partitions up to date");
                } else {
                    tracing::info!(created = ?report.created, dropped = ?report.dropped,
                        ids_forgotten = report.ids_forgotten, "partitions maintained");
                }
                every
            }
            Ok(None) => every,
            Err(e) => {
                tracing::warn!(error = %e, "partition maintenance failed; retrying");
                every.min(Duration::from_secs(60))
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
