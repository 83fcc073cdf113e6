//! The fetch cycle: on each tick, fetch the provider's document, parse it as it streams in,
//! and a chunk at a time publish the plans whose content hash changed (and the rejected
//! records not published before, which the workers dead-letter), then record the chunk's
//! hashes. A failure before a chunk's hashes are recorded leaves them untouched, so the next
//! tick publishes the same changes again (with the same event ids, which the idempotent store
//! absorbs).

use std::collections::HashMap;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use sea_orm::DbErr;
use tokio::sync::mpsc;
use tokio_util::bytes::Bytes;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use crate::FetcherSettings;
use crate::hashes::{HashStore, PlanKey};
use crate::http::{FetchError, HttpFetcher, body_with_idle_timeout};
use crate::monitoring;
use crate::provider::{FeedError, Limits, ParseSummary, Provider};
use crate::publish::ProviderPublisher;
use eye_core::link::PublishError;
use eye_core::provider::{Record, Rejected, to_envelope};

/// Why a fetch cycle did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("fetch: {0}")]
    Fetch(#[from] FetchError),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("publish: {0}")]
    Publish(#[from] PublishError),
    /// The cycle's cap passed; the chunks recorded before it stand.
    #[error("the cycle did not complete within {0:?}")]
    Timeout(Duration),
}

impl CycleError {
    /// A short, fixed name of the failure (the `reason` label of the failure counter).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Fetch(e) => e.reason(),
            Self::Database(_) => "database",
            Self::Publish(_) => "publish",
            Self::Timeout(_) => "cycle_timeout",
        }
    }
}

/// What one fetch cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub plans: usize,
    /// Plans whose content changed since the last publish, now published.
    pub changed: usize,
    /// Rejected records published (to be dead-lettered by the workers).
    pub rejected: usize,
    /// The document's own error, when it could not be read to its end.
    pub document_error: Option<String>,
}

/// A provider, its HTTP side, its hashes and its publisher.
pub struct Fetcher {
    name: String,
    provider: Arc<dyn Provider>,
    http: HttpFetcher,
    hashes: HashStore,
    publisher: Arc<ProviderPublisher>,
    limits: Limits,
    interval: Duration,
    cycle_timeout: Duration,
}

impl Fetcher {
    /// The fetcher of the settings' one provider (the providers file is ignored): checks
    /// the settings and prepares a lazy database pool.
    pub async fn build(settings: FetcherSettings) -> anyhow::Result<Self> {
        let settings = FetcherSettings {
            providers_file: None,
            ..settings
        };
        let mut all = Self::build_all(settings).await?;
        Ok(all.remove(0))
    }

    /// One fetcher per configured provider, sharing the database pool and the broker link.
    pub async fn build_all(settings: FetcherSettings) -> anyhow::Result<Vec<Self>> {
        let providers = settings.providers()?;
        let db = settings.database.connect().await?;
        let publisher = Arc::new(ProviderPublisher::start(
            settings.amqp.clone(),
            settings.publish_timeout(),
        ));
        providers
            .into_iter()
            .map(|p| {
                monitoring::circuit(&p.name, false);
                Ok(Self {
                    http: HttpFetcher::new(p.policy)?,
                    name: p.name,
                    provider: p.adapter,
                    hashes: HashStore::new(db.clone()),
                    publisher: publisher.clone(),
                    limits: p.limits,
                    interval: p.interval,
                    cycle_timeout: p.cycle_timeout,
                })
            })
            .collect()
    }

    /// Runs every fetcher until `shutdown` is cancelled.
    pub async fn run_all(fetchers: Vec<Self>, shutdown: CancellationToken) {
        let running: Vec<_> = fetchers
            .into_iter()
            .map(|f| tokio::spawn(f.run_until_stopped(shutdown.clone())))
            .collect();
        for task in running {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a fetcher task failed");
            }
        }
    }

    /// Fetches on every interval until `shutdown` is cancelled.
    pub async fn run_until_stopped(mut self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let started = std::time::Instant::now();
            let cycle = tokio::select! {
                () = shutdown.cancelled() => break,
                cycle = self.run_once() => cycle,
            };
            let took_ms = started.elapsed().as_millis() as u64;
            match cycle {
                Ok(report) => tracing::info!(provider = %self.name, took_ms, ?report, "fetched"),
                Err(e) => {
                    tracing::warn!(provider = %self.name, took_ms, error = %e, "fetch cycle failed")
                }
            }
        }
        self.publisher.close().await;
        tracing::info!("fetcher stopped");
    }

    /// One cycle: fetch, parse the body as it arrives (on a blocking thread, the records
    /// coming back over a bounded channel), and per chunk of records: compare their hashes
    /// with the stored ones, publish the changed, record the hashes once confirmed. Memory
    /// holds one chunk, never the document nor the whole hash table. A body that breaks off
    /// fails the cycle, but the chunks read before the break are published and recorded, so
    /// the next fetch only completes the rest. The whole cycle is capped by
    /// `cycle_timeout`; once it passes, the download and the parse stop.
    pub async fn run_once(&mut self) -> Result<CycleReport, CycleError> {
        let cap = self.cycle_timeout;
        let outcome = tokio::time::timeout(cap, self.cycle())
            .await
            .unwrap_or(Err(CycleError::Timeout(cap)));
        monitoring::cycle(&self.name, &outcome, self.http.circuit_open());
        outcome
    }

    async fn cycle(&mut self) -> Result<CycleReport, CycleError> {
        let response = self.http.fetch().await?;
        let body = Box::pin(body_with_idle_timeout(
            response,
            self.http.policy().read_timeout,
        ));
        let mut cycle = Cycle::new(Utc::now());
        let (mut records, parsing) = spawn_parse(self.provider.clone(), body, self.limits);
        while let Some(record) = records.recv().await {
            cycle.add(record);
            if cycle.chunk.len() >= CHUNK {
                self.flush(&mut cycle).await?;
            }
        }
        let broke_off = match parsing.await.expect("the parser does not panic") {
            Ok(_) => None,
            Err(FeedError::Read(message)) => Some(FetchError::Body(message)),
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %e, "document not read to its end");
                cycle.report.document_error = Some(e.to_string());
                cycle.add(Record::Rejected(Rejected::new(
                    None,
                    None,
                    None,
                    e.position().unwrap_or(0),
                    &format!("document: {e}"),
                )));
                None
            }
        };
        self.flush(&mut cycle).await?;
        self.http.settle(broke_off.as_ref());
        metrics::counter!("eye_fetch_plans_changed_total", "provider" => self.name.clone())
            .increment(cycle.report.changed as u64);
        match broke_off {
            Some(e) => Err(e.into()),
            None => Ok(cycle.report),
        }
    }

    /// Publishes the chunk's changed records, then records its hashes.
    async fn flush(&self, cycle: &mut Cycle) -> Result<(), CycleError> {
        let chunk = std::mem::take(&mut cycle.chunk);
        let keys: Vec<_> = chunk.keys().collect();
        let known = self.hashes.load(&self.name, &keys).await?;
        let mut envelopes = Vec::new();
        for (key, (hash, record)) in &chunk {
            if known.get(key) != Some(hash) {
                if matches!(record, Record::Plan(_)) {
                    cycle.report.changed += 1;
                }
                envelopes.push(to_envelope(&self.name, record, cycle.fetched_at));
            }
        }
        self.publisher.publish(&envelopes).await?;
        let seen: Vec<_> = chunk.iter().map(|(key, (hash, _))| (key, hash)).collect();
        self.hashes
            .record(&self.name, &seen, cycle.fetched_at)
            .await?;
        Ok(())
    }
}

/// Records judged, published and recorded together while a document streams in.
const CHUNK: usize = 2000;

/// Records parsed ahead of the publisher (back-pressure on the parser, and so on the body).
const RECORDS_IN_FLIGHT: usize = 1024;

/// Parses the streamed body on a blocking thread: quick-xml reads synchronously, bridged to
/// the async body by tokio-util; records come back over a bounded channel.
fn spawn_parse(
    provider: Arc<dyn Provider>,
    body: impl Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
    limits: Limits,
) -> (
    mpsc::Receiver<Record>,
    tokio::task::JoinHandle<Result<ParseSummary, FeedError>>,
) {
    let (tx, rx) = mpsc::channel(RECORDS_IN_FLIGHT);
    let body = SyncIoBridge::new(StreamReader::new(body));
    let body = UntilAbandoned {
        inner: body,
        records: tx.clone(),
    };
    let parsing = tokio::task::spawn_blocking(move || {
        let mut body = BufReader::with_capacity(64 * 1024, body);
        // A send fails only once the cycle gave up (a failed publish, a shutdown); the body
        // then fails its next read, which ends the parse.
        provider.parse(&mut body, limits, &mut |record| {
            let _ = tx.blocking_send(record);
        })
    });
    (rx, parsing)
}

/// The body, readable only while someone still takes the records: a cycle that gave up stops
/// the download and the parse instead of reading the rest of a large document for nothing.
struct UntilAbandoned<R> {
    inner: R,
    records: mpsc::Sender<Record>,
}

impl<R: std::io::Read> std::io::Read for UntilAbandoned<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.records.is_closed() {
            return Err(std::io::Error::other("the fetch cycle was abandoned"));
        }
        self.inner.read(out)
    }
}

/// One cycle's state: the chunk being gathered (by plan key: the first of a key in a chunk
/// is kept) and the report.
struct Cycle {
    chunk: HashMap<PlanKey, (String, Record)>,
    fetched_at: DateTime<Utc>,
    report: CycleReport,
}

impl Cycle {
    fn new(fetched_at: DateTime<Utc>) -> Self {
        Self {
            chunk: HashMap::with_capacity(CHUNK),
            fetched_at,
            report: CycleReport::default(),
        }
    }

    fn add(&mut self, record: Record) {
        let (key, hash) = match &record {
            Record::Plan(plan) => {
                self.report.plans += 1;
                (
                    (plan.base_plan_id.clone(), plan.plan_id.clone()),
                    plan.content_hash(),
                )
            }
            Record::Rejected(rejected) => {
                self.report.rejected += 1;
                (rejected.hash_key(), rejected.digest())
            }
        };
        self.chunk.entry(key).or_insert((hash, record));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_body_stops_once_nobody_takes_the_records() {
        let (tx, rx) = mpsc::channel(1);
        let mut body = UntilAbandoned {
            inner: &b"<planList>"[..],
            records: tx,
        };
        let mut first = [0u8; 4];
        assert_eq!(body.read(&mut first).expect("still wanted"), 4);
        drop(rx);
        assert!(body.read(&mut first).is_err());
    }
}
