//! Recording attempts, many per transaction. Every attempt's task hands its record to the
//! one recorder (a FIFO endpoint's waits until it is committed); the recorder writes whatever has queued up
//! meanwhile as one statement (the attempt rows, the deliveries' states, each endpoint's
//! health), so the dispatcher commits (and fsyncs) once per batch rather than once per
//! attempt. Under load a batch is what arrived during the previous commit; idle, a batch of
//! one is written at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Records written in one statement at most.
pub const MAX_BATCH: usize = 500;

/// How a delivery ends its attempt.
#[derive(Debug, Clone)]
pub enum Next {
    Succeeded,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    /// No attempt left, or the endpoint is gone.
    Failed,
    /// Nothing to send (the event was erased before its delivery).
    Skipped,
}

/// One attempt and its consequence, as written.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub subscription_id: Uuid,
    pub event_id: Option<Uuid>,
    pub webhook_id: String,
    pub trigger: &'static str,
    /// When the request started (the delivery's first attempt, if it is its first).
    pub started_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub response: Option<String>,
    pub error: Option<String>,
    /// The endpoint answered 410: disable it.
    pub gone: bool,
    /// The delivery's state after this attempt.
    pub outcome: &'static str,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl Next {
    /// The delivery's `status` and `next_attempt_at` after the attempt (a [`Record`]'s
    /// `outcome` and `next_attempt_at`).
    pub fn state(&self) -> (&'static str, Option<DateTime<Utc>>) {
        match self {
            Self::Succeeded => ("succeeded", None),
            Self::Retry(at) => ("pending", Some(*at)),
            Self::Failed => ("failed", None),
            Self::Skipped => ("skipped", None),
        }
    }
}

type Job = (Record, Option<oneshot::Sender<()>>);

/// The handle attempts record through; cloned into every endpoint task.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the recorder task; it ends once every handle is dropped and its queue written.
    pub fn spawn(db: DatabaseConnection, disable_after: Duration) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        (Self { tx }, tokio::spawn(run(db, rx, disable_after)))
    }

    /// Queues `record` and waits until it is committed (or given up after retries, when
    /// the delivery's lease runs out and it is sent again with the same webhook-id).
    pub async fn record(&self, record: Record) {
        let (done, committed) = oneshot::channel();
        if self.tx.send((record, Some(done))).await.is_ok() {
            let _ = committed.await;
        }
    }

    /// Queues `record` (waiting only while the queue is full). Until it is committed, the
    /// delivery's lease keeps it from being claimed again; a stopping dispatcher writes its
    /// queue before it ends.
    pub async fn submit(&self, record: Record) {
        let _ = self.tx.send((record, None)).await;
    }
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>, disable_after: Duration) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records: Vec<&Record> = batch.iter().map(|(r, _)| r).collect();
        metrics::histogram!("eye_webhook_record_batch_size").record(records.len() as f64);
        write_retrying(&db, &records, disable_after).await;
        for (_, done) in batch.drain(..) {
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
}

/// Writes a batch, retrying while the database is away (the leases keep the deliveries
/// meanwhile; if they run out, the deliveries are sent again with the same webhook-ids).
async fn write_retrying(db: &DatabaseConnection, records: &[&Record], disable_after: Duration) {
    for pause in [50u64, 200, 1000, 2000, 5000] {
        match write(db, records, disable_after).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempts = records.len(), "cannot record webhook attempts; retrying");
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
    tracing::error!(
        attempts = records.len(),
        "webhook attempts not recorded; their deliveries are due again when their leases end"
    );
}

/// Records attempts and their consequences in one statement: the attempt rows (in the
/// batch's order), the deliveries' states, and each endpoint's health. Per endpoint: a
/// success clears `failing_since`; only failures set it, and disable the endpoint when
/// failing for longer than `disable_after`; a 410 disables it in any case, with the reason.
pub async fn write(
    db: &impl ConnectionTrait,
    records: &[&Record],
    disable_after: Duration,
) -> Result<(), DbErr> {
    const SQL: &str = "\
WITH x AS ( \
  SELECT * FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS ( \
    subscription_id uuid, event_id uuid, webhook_id text, trigger text, started_at timestamptz, \
    status_code int, latency_ms int, response text, error text, gone bool, outcome text, \
    next_attempt_at timestamptz)) WITH ORDINALITY AS x(subscription_id, event_id, webhook_id, \
    trigger, started_at, status_code, latency_ms, response, error, gone, outcome, \
    next_attempt_at, ord)), \
a AS ( \
  INSERT INTO webhook_attempts \
    (subscription_id, event_id, webhook_id, trigger, attempted_at, status_code, latency_ms, \
     response, error) \
  SELECT subscription_id, event_id, webhook_id, trigger, started_at, status_code, latency_ms, \
         response, error FROM x ORDER BY ord RETURNING 1), \
o AS ( \
  SELECT subscription_id, bool_or(outcome = 'succeeded') AS ok, bool_or(gone) AS gone \
  FROM x WHERE outcome <> 'skipped' GROUP BY subscription_id), \
hs AS ( \
  SELECT s.id, o.ok, o.gone, s.enabled, s.failing_since, \
         NOT o.ok AND COALESCE(s.failing_since < now() - make_interval(secs => $2), false) AS stale \
  FROM webhook_subscriptions s JOIN o ON o.subscription_id = s.id), \
h AS ( \
  UPDATE webhook_subscriptions s SET \
    failing_since = CASE WHEN hs.ok THEN NULL ELSE COALESCE(s.failing_since, now()) END, \
    enabled = s.enabled AND NOT (hs.gone OR hs.stale), \
    disabled_reason = CASE \
      WHEN NOT s.enabled THEN s.disabled_reason \
      WHEN hs.gone THEN 'the endpoint answered 410 Gone' \
      WHEN hs.stale THEN 'failing since ' \
        || to_char(s.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
        || ', longer than ' || $2::text || ' s' \
      ELSE s.disabled_reason END, \
    updated_at = CASE WHEN s.enabled AND (hs.gone OR hs.stale) THEN now() ELSE s.updated_at END \
  FROM hs WHERE s.id = hs.id \
    AND (NOT hs.ok OR hs.gone OR hs.failing_since IS NOT NULL) \
  RETURNING 1), \
d AS ( \
  UPDATE webhook_deliveries d SET status = x.outcome, attempts = d.attempts + 1, \
    next_attempt_at = COALESCE(x.next_attempt_at, d.next_attempt_at), leased_until = NULL, \
    last_error = x.error, \
    first_attempt_at = COALESCE(d.first_attempt_at, x.started_at) \
  FROM x WHERE d.subscription_id = x.subscription_id AND d.event_id = x.event_id \
  RETURNING 1) \
SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM h) + (SELECT count(*) FROM d) AS n";
    let json = serde_json::to_string(records)
        .map_err(|e| DbErr::Custom(format!("webhook attempts as JSON: {e}")))?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        SQL,
        vec![json.into(), disable_after.as_secs_f64().into()],
    ))
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_gives_the_delivery_state() {
        let at = Utc::now();
        assert_eq!(Next::Retry(at).state(), ("pending", Some(at)));
        assert_eq!(Next::Succeeded.state(), ("succeeded", None));
        assert_eq!(Next::Failed.state(), ("failed", None));
        assert_eq!(Next::Skipped.state(), ("skipped", None));
    }
}
