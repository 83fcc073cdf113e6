//! The importer: a background task of every worker that claims staged imports (the api put
//! the uploaded file's rows in `import_rows`) and runs them a chunk at a time: each row is
//! mapped to an event (`eye_core::import`), judged by the same validators as the queue's
//! events, deduplicated, and the chunk is stored with its counters and checkpoint in one
//! transaction (`storage::imports`). A worker killed mid-file loses only its uncommitted chunk;
//! whoever claims the import once the lease passes goes on after the checkpoint. Between
//! imports it also fails the uploads that stopped moving (see `sweep_abandoned_uploads`).

use std::sync::Arc;
use std::time::Duration;

use eye_core::import::{Layout, STATE_DONE, STATE_FAILED};
use eye_core::{Envelope, Source};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::pipeline::{Pipeline, Verdict};
use crate::settings::WorkerSettings;
use sea_orm::DbErr;
use tokio::task::JoinHandle;

use crate::storage::imports::{Chunk, Claimed, Outcome, Refusal, Staged, dedup};
use crate::storage::{Fault, Store, classify};

/// Claims and runs imports until `shutdown`.
pub async fn run(
    settings: &WorkerSettings,
    pipeline: Arc<Pipeline>,
    store: &Store,
    shutdown: &CancellationToken,
) {
    let poll = Duration::from_millis(settings.import_poll_ms);
    // A fresh owner per process: a restarted worker waits for its old lease like any other.
    let owner = Uuid::now_v7();
    let stale = settings.import_upload_stale_secs;
    // Looked for often enough that an abandoned upload is failed within about `stale` more.
    let sweep_every = Duration::from_secs(stale.clamp(1, 60));
    let mut next_sweep = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        if tokio::time::Instant::now() >= next_sweep {
            next_sweep = tokio::time::Instant::now() + sweep_every;
            match store.sweep_abandoned_uploads(stale).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(imports = n, "failed abandoned uploads"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep abandoned uploads"),
            }
        }
        let wait = match store.claim_import(owner, settings.import_lease_secs).await {
            Ok(Some(import)) => {
                match import_file(settings, &pipeline, store, &import, owner, shutdown).await {
                    Ok(()) => Duration::ZERO,
                    Err(e) => {
                        tracing::warn!(error = %e, import = %import.id, "import interrupted; resumes later");
                        poll
                    }
                }
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim imports");
                poll
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn import_file(
    settings: &WorkerSettings,
    pipeline: &Pipeline,
    store: &Store,
    import: &Claimed,
    owner: Uuid,
    shutdown: &CancellationToken,
) -> Result<(), DbErr> {
    let layout = match import.spec.layout() {
        Ok(layout) => layout,
        Err(e) => {
            return store
                .close_import(import.id, owner, STATE_FAILED, Some(&e.to_string()))
                .await;
        }
    };
    tracing::info!(import = %import.id, app = %import.app_id, after = import.checkpoint, "importing");
    // A pipeline of three stages on separate tasks: chunk N commits (PostgreSQL's work)
    // while chunk N+1 is judged here (the worker's) and chunk N+2 is read. Commits stay
    // strictly one after the other, in file order: chunk N+1's commit starts only once
    // chunk N's has committed, so the checkpoint only ever moves past committed rows.
    let mut reading = read(store, import.id, import.checkpoint, settings.import_chunk);
    let mut committing: Option<Committing> = None;
    loop {
        let rows = reading.await.map_err(joined)??;
        let Some(last) = rows.last() else { break };
        reading = read(store, import.id, last.row_no, settings.import_chunk);
        let chunk = judge(pipeline, &layout, import, rows);
        if let Some(previous) = committing.take()
            && let Some(end) = settled(store, import, owner, previous).await?
        {
            return end;
        }
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let (store, import, lease) = (store.clone(), import.clone(), settings.import_lease_secs);
        committing = Some(tokio::spawn(async move {
            let outcome = store
                .commit_import_chunk(&import, owner, lease, &chunk)
                .await;
            (outcome, chunk.read)
        }));
    }
    if let Some(previous) = committing.take()
        && let Some(end) = settled(store, import, owner, previous).await?
    {
        return end;
    }
    store
        .close_import(import.id, owner, STATE_DONE, None)
        .await?;
    tracing::info!(import = %import.id, "import done");
    Ok(())
}

/// A chunk's commit in flight: its outcome and the rows it read.
type Committing = JoinHandle<(Result<Outcome, DbErr>, u64)>;

/// Reads the staged rows after `after` on a task of its own (so it runs while the caller
/// judges and commits).
fn read(store: &Store, id: Uuid, after: i64, limit: u32) -> JoinHandle<Result<Vec<Staged>, DbErr>> {
    let store = store.clone();
    tokio::spawn(async move { store.staged_rows(id, after, limit).await })
}

/// A task that did not finish (panicked or aborted): a transient failure, the import resumes
/// from its checkpoint.
fn joined(e: tokio::task::JoinError) -> DbErr {
    DbErr::Custom(format!("import task: {e}"))
}

/// Waits for a chunk's commit. `None`: committed, go on. `Some(end)`: the import stops here
/// with `end` (it failed on a row the database refuses, or it was cancelled or taken over).
/// A transient failure is the error (the import resumes later from its checkpoint).
async fn settled(
    store: &Store,
    import: &Claimed,
    owner: Uuid,
    committing: Committing,
) -> Result<Option<Result<(), DbErr>>, DbErr> {
    let (outcome, read) = committing.await.map_err(joined)?;
    let committed = match outcome {
        Ok(outcome) => outcome,
        Err(e) => match classify(&e) {
            // A row the database refuses would fail every retry: the import fails, its
            // committed chunks stay.
            Fault::Data(message) => {
                return Ok(Some(
                    store
                        .close_import(import.id, owner, STATE_FAILED, Some(&message))
                        .await,
                ));
            }
            Fault::Transient => return Err(e),
        },
    };
    if committed == Outcome::Lost {
        tracing::info!(import = %import.id, "import cancelled or taken over; stopping");
        // Cancelled: its staged rows are no longer needed (a no-op if another worker holds it).
        return Ok(Some(
            store
                .close_import(import.id, owner, STATE_FAILED, None)
                .await,
        ));
    }
    metrics::counter!("eye_worker_import_rows_total").increment(read);
    Ok(None)
}

/// Maps and judges a chunk's rows, and keeps each id once by the import's rule.
fn judge(pipeline: &Pipeline, layout: &Layout, import: &Claimed, rows: Vec<Staged>) -> Chunk {
    let mut chunk = Chunk {
        last_row: rows.last().map_or(import.checkpoint, |r| r.row_no),
        read: rows.len() as u64,
        ..Chunk::default()
    };
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        let event = match layout.event(&import.app_id, &row.line) {
            Ok(event) => event,
            Err(e) => {
                chunk.refusals.push(Refusal {
                    row_no: row.row_no,
                    column: e.column,
                    message: e.message,
                    line: row.line,
                });
                continue;
            }
        };
        let envelope = Envelope {
            app_id: import.app_id.clone(),
            source: Source::Import(import.id.to_string()),
            // The import's creation, not the clock: a resumed chunk is judged as the first try.
            received_at: import.created_at,
            request_id: None,
            event,
        };
        match pipeline.judge_envelope(envelope) {
            Verdict::Refuse {
                envelope,
                violations,
            } => {
                let first = violations.first();
                chunk.refusals.push(Refusal {
                    row_no: row.row_no,
                    column: first.map_or_else(String::new, |v| v.field.clone()),
                    message: first
                        .map_or_else(String::new, |v| format!("{}: {}", v.validator, v.message)),
                    line: row.line,
                });
                chunk.refused_events.push(Verdict::Refuse {
                    envelope,
                    violations,
                });
            }
            verdict => valid.push(verdict),
        }
    }
    let (winners, losers) = dedup(valid, layout.spec().dedup.keep);
    chunk.winners = winners;
    chunk.duplicates_in_chunk = losers;
    chunk
}
