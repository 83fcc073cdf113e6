//! The deleter: a background task of every worker that claims confirmed erasures and deletes
//! what they match in bounded chunks (events, then dead letters of every kind: refused,
//! warnings, undecodable and poisoned), a short pause between chunks so ingestion's commits
//! are never held behind it. Progress is on the erasure row (`GET /erasures/{id}`).

use std::time::Duration;

use eye_core::erasure::Table;
use tokio_util::sync::CancellationToken;

use crate::settings::WorkerSettings;
use crate::storage::Store;
use crate::storage::erasures::{Claimed, Cursor};

/// Claims and runs erasures until `shutdown`. An erasure interrupted (shutdown, a database
/// failure) keeps its progress; its lease passes and it is claimed again, by this worker or
/// another, and resumes (deleting is idempotent).
pub async fn run(settings: &WorkerSettings, store: &Store, shutdown: &CancellationToken) {
    let poll = Duration::from_millis(settings.erasure_poll_ms);
    while !shutdown.is_cancelled() {
        let wait = match store.claim_erasure().await {
            Ok(Some(erasure)) => match erase(settings, store, &erasure, shutdown).await {
                Ok(()) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %e, erasure = %erasure.id, "erasure interrupted; resumes later");
                    poll
                }
            },
            Ok(None) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim erasures");
                poll
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn erase(
    settings: &WorkerSettings,
    store: &Store,
    erasure: &Claimed,
    shutdown: &CancellationToken,
) -> Result<(), sea_orm::DbErr> {
    let pause = Duration::from_millis(settings.erasure_pause_ms);
    tracing::info!(erasure = %erasure.id, app = %erasure.filter.app_id, "erasing");
    for table in [Table::Events, Table::DeadLetters] {
        let mut cursor = Cursor::start(table);
        while let Some((deleted, next)) = store
            .erase_chunk(erasure, cursor, settings.erasure_chunk)
            .await?
        {
            metrics::counter!("eye_worker_erased_total", "table" => table_name(table))
                .increment(deleted);
            cursor = next;
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
    store.finish_erasure(erasure).await?;
    tracing::info!(erasure = %erasure.id, "erasure done");
    Ok(())
}

fn table_name(table: Table) -> &'static str {
    match table {
        Table::Events => "events",
        Table::DeadLetters => "dead_letters",
    }
}
