//! The fetcher role: on each tick, fetch the provider's document, parse it as it streams in,
//! publish the plans whose content hash changed (and the rejected records not published
//! before, which the workers dead-letter), then record the hashes. A failure at any step leaves the hashes
//! untouched, so the next tick publishes the same changes again (with the same event ids,
//! which the idempotent store absorbs).

mod providers;
mod settings;

use std::collections::HashMap;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sea_orm::{Database, DbErr};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

pub use providers::{ProviderConfig, parse_providers};
pub use settings::FetcherSettings;

use crate::provider::fetch::{FetchError, HttpFetcher};
use crate::provider::hashes::{HashStore, Hashes};
use crate::provider::publish::ProviderPublisher;
use crate::provider::record::to_envelope;
use crate::provider::{FeedError, Limits, ParseSummary, Provider, Record, Rejected};
use eye_core::Envelope;
use eye_core::link::PublishError;

/// Why a fetch cycle did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("fetch: {0}")]
    Fetch(#[from] FetchError),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("publish: {0}")]
    Publish(#[from] PublishError),
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
        let db = Database::connect(settings.database.connect_options()).await?;
        let publisher = Arc::new(ProviderPublisher::start(
            settings.amqp.clone(),
            settings.publish_timeout(),
        ));
        providers
            .into_iter()
            .map(|p| {
                Ok(Self {
                    http: HttpFetcher::new(p.policy)?,
                    name: p.name,
                    provider: p.adapter,
                    hashes: HashStore::new(db.clone()),
                    publisher: publisher.clone(),
                    limits: p.limits,
                    interval: p.interval,
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
            let cycle = tokio::select! {
                () = shutdown.cancelled() => break,
                cycle = self.run_once() => cycle,
            };
            match cycle {
                Ok(report) => tracing::info!(provider = %self.name, ?report, "fetched"),
                Err(e) => {
                    tracing::warn!(provider = %self.name, error = %e, "fetch cycle failed")
                }
            }
        }
        self.publisher.close().await;
        tracing::info!("fetcher stopped");
    }

    /// One cycle: fetch, parse the body as it arrives (on a blocking thread, the records
    /// coming back over a bounded channel), publish the changed records in chunks as they
    /// come, then record the hashes. Memory holds one chunk and the hash table, not the
    /// document. A body that breaks off fails the cycle, but what was read before the break
    /// is published and its hashes recorded, so the next fetch only completes the rest.
    pub async fn run_once(&mut self) -> Result<CycleReport, CycleError> {
        let name = self.name.clone();
        let known = self.hashes.load(&name).await?;
        let response = self.http.fetch().await?;
        let mut cycle = Cycle::new(name.clone(), known, Utc::now());
        let (mut records, parsing) = spawn_parse(self.provider.clone(), response, self.limits);
        while let Some(record) = records.recv().await {
            cycle.judge(record);
            if cycle.pending.len() >= PUBLISH_CHUNK {
                self.publish(&mut cycle).await?;
            }
        }
        let broke_off = match parsing.await.expect("the parser does not panic") {
            Ok(_) => None,
            Err(FeedError::Read(message)) => Some(FetchError::Body(message)),
            Err(e) => {
                tracing::warn!(provider = %name, error = %e, "document not read to its end");
                cycle.report.document_error = Some(e.to_string());
                cycle.judge(Record::Rejected(Rejected {
                    base_plan_id: None,
                    plan_id: None,
                    zone_id: None,
                    position: e.position().unwrap_or(0),
                    reason: format!("document: {e}"),
                }));
                None
            }
        };
        self.publish(&mut cycle).await?;
        self.hashes
            .record(&name, &cycle.seen, cycle.fetched_at)
            .await?;
        self.http.settle(broke_off.as_ref());
        metrics::counter!("eye_fetch_plans_changed_total", "provider" => name)
            .increment(cycle.report.changed as u64);
        match broke_off {
            Some(e) => Err(e.into()),
            None => Ok(cycle.report),
        }
    }

    async fn publish(&self, cycle: &mut Cycle) -> Result<(), PublishError> {
        self.publisher.publish(&cycle.pending).await?;
        cycle.pending.clear();
        Ok(())
    }
}

/// Envelopes published together while a document streams in.
const PUBLISH_CHUNK: usize = 1000;

/// Records parsed ahead of the publisher (back-pressure on the parser, and so on the body).
const RECORDS_IN_FLIGHT: usize = 1024;

/// Parses the streamed body on a blocking thread: quick-xml reads synchronously, bridged to
/// the async body by tokio-util; records come back over a bounded channel.
fn spawn_parse(
    provider: Arc<dyn Provider>,
    response: reqwest::Response,
    limits: Limits,
) -> (
    mpsc::Receiver<Record>,
    tokio::task::JoinHandle<Result<ParseSummary, FeedError>>,
) {
    let (tx, rx) = mpsc::channel(RECORDS_IN_FLIGHT);
    let body = SyncIoBridge::new(StreamReader::new(
        response.bytes_stream().map_err(std::io::Error::other),
    ));
    let parsing = tokio::task::spawn_blocking(move || {
        let mut body = BufReader::with_capacity(64 * 1024, body);
        // A send fails only once the cycle gave up (a publish failed): the rest is dropped.
        provider.parse(&mut body, limits, &mut |record| {
            let _ = tx.blocking_send(record);
        })
    });
    (rx, parsing)
}

/// One cycle's state: the hashes it compares against, what it saw, what awaits publishing.
struct Cycle {
    provider: String,
    known: Hashes,
    seen: Hashes,
    pending: Vec<Envelope>,
    fetched_at: DateTime<Utc>,
    report: CycleReport,
}

impl Cycle {
    fn new(provider: String, known: Hashes, fetched_at: DateTime<Utc>) -> Self {
        Self {
            provider,
            seen: HashMap::with_capacity(known.len()),
            known,
            pending: Vec::new(),
            fetched_at,
            report: CycleReport::default(),
        }
    }

    /// Keeps a record for publishing if its content changed since the last publish.
    fn judge(&mut self, record: Record) {
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
        if self.known.get(&key) != Some(&hash) {
            if matches!(record, Record::Plan(_)) {
                self.report.changed += 1;
            }
            self.pending
                .push(to_envelope(&self.provider, &record, self.fetched_at));
        }
        self.seen.insert(key, hash);
    }
}
