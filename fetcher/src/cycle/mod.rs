//! The fetch cycle: on each tick, fetch the provider's document, parse it as it streams in,
//! and a chunk at a time publish the plans whose content hash changed (and the rejected
//! records not published before, which the workers dead-letter), then record the chunk's
//! hashes. A failure before a chunk's hashes are recorded leaves them untouched, so the next
//! tick publishes the same changes again (with the same event ids, which the idempotent store
//! absorbs).

mod guard;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::DbErr;
use tokio_util::sync::CancellationToken;

use crate::FetcherSettings;
use crate::hashes::{HashStore, PlanKey};
use crate::history::History;
use crate::http::{FetchError, HttpFetcher, body_with_idle_timeout};
use crate::monitoring;
use crate::provider::{FeedError, Limits, Listing, Provider};
use crate::publish::ProviderPublisher;
use eye_core::link::PublishError;
use eye_core::provider::{ItemRecord, Record, Rejected, to_envelope};
use guard::removal_guard;
use stream::spawn_parse;

/// Pages read of one listing at most in a cycle (a remote that never sends a short page).
const MAX_PAGES: usize = 100_000;

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
    /// Plans, or a JSON provider's records, read.
    pub plans: usize,
    /// Plans (records) whose content changed since the last publish, now published.
    pub changed: usize,
    /// Records gone from a resource read to its end, now published as removed.
    pub removed: usize,
    /// Documents (pages) read.
    pub documents: usize,
    /// Rejected records published (to be dead-lettered by the workers).
    pub rejected: usize,
    /// The document's own error, when it could not be read to its end.
    pub document_error: Option<String>,
    /// Why removals were not published: a resource whose pass would have removed more than
    /// the guard allows (an empty or short answer is more likely a remote fault than a purge).
    pub removals_refused: Option<String>,
}

/// A provider, its HTTP side, its hashes and its publisher.
pub struct Fetcher {
    name: String,
    provider: Arc<dyn Provider>,
    http: HttpFetcher,
    hashes: HashStore,
    history: History,
    publisher: Arc<ProviderPublisher>,
    limits: Limits,
    interval: Duration,
    cycle_timeout: Duration,
    max_removed_percent: u8,
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
                    history: History::new(db.clone()),
                    publisher: publisher.clone(),
                    limits: p.limits,
                    interval: p.interval,
                    cycle_timeout: p.cycle_timeout,
                    max_removed_percent: p.max_removed_percent,
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
        let started_at = Utc::now();
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(cap, self.cycle())
            .await
            .unwrap_or(Err(CycleError::Timeout(cap)));
        monitoring::cycle(&self.name, &outcome, self.http.circuit_open());
        let circuit = (self.http.circuit_open(), self.http.failures());
        self.history
            .record(&self.name, started_at, started.elapsed(), &outcome, circuit)
            .await;
        outcome
    }

    async fn cycle(&mut self) -> Result<CycleReport, CycleError> {
        // Microseconds, as PostgreSQL keeps them: the sweep compares the stored `last_seen`.
        let mut cycle = Cycle::new(Utc::now().trunc_subsecs(6));
        for listing in self.provider.listings(&self.http.policy().url) {
            let mut page = 1;
            let complete = loop {
                match self.read_page(&listing, page, &mut cycle).await? {
                    Some(n) if listing.page_size > 0 && n >= listing.page_size => {
                        if page >= MAX_PAGES {
                            break false;
                        }
                        page += 1;
                    }
                    Some(_) => break true,
                    None => break false,
                }
            };
            if let (true, Some(resource)) = (complete, &listing.resource) {
                self.sweep(resource, &mut cycle).await?;
            }
        }
        self.flush(&mut cycle).await?;
        metrics::counter!("eye_fetch_plans_changed_total", "provider" => self.name.clone())
            .increment(cycle.report.changed as u64);
        if cycle.report.removed > 0 {
            metrics::counter!("eye_fetch_records_removed_total", "provider" => self.name.clone())
                .increment(cycle.report.removed as u64);
        }
        Ok(cycle.report)
    }

    /// Fetches and parses one page, flushing chunks as they fill. Some(records on the page)
    /// when it was read to its end; None when the document was not (its error is a rejected
    /// record and the report's `document_error`). A body that broke off fails the cycle.
    async fn read_page(
        &mut self,
        listing: &Listing,
        page: usize,
        cycle: &mut Cycle,
    ) -> Result<Option<usize>, CycleError> {
        let url = listing.page_url(page);
        let response = self.http.fetch_from(&url).await?;
        cycle.report.documents += 1;
        let body = Box::pin(body_with_idle_timeout(
            response,
            self.http.policy().read_timeout,
        ));
        let (mut records, parsing) =
            spawn_parse(self.provider.clone(), listing.clone(), body, self.limits);
        while let Some(record) = records.recv().await {
            cycle.add(record);
            if cycle.chunk.len() >= CHUNK {
                self.flush(cycle).await?;
            }
        }
        let (read, broke_off) = match parsing.await.expect("the parser does not panic") {
            Ok(summary) => (Some(summary.plans + summary.rejected), None),
            Err(FeedError::Read(message)) => (None, Some(FetchError::Body(message))),
            Err(e) => {
                tracing::warn!(provider = %self.name, %url, error = %e, "document not read to its end");
                let (error, reason) = match &listing.resource {
                    None => (e.to_string(), format!("document: {e}")),
                    Some(_) => (format!("{url}: {e}"), format!("document {url}: {e}")),
                };
                cycle.report.document_error = Some(error);
                cycle.add(Record::Rejected(Rejected::new(
                    listing.resource.as_deref(),
                    None,
                    None,
                    e.position().unwrap_or(0),
                    &reason,
                )));
                (None, None)
            }
        };
        self.flush(cycle).await?;
        self.http.settle(broke_off.as_ref());
        match broke_off {
            Some(e) => Err(e.into()),
            None => Ok(read),
        }
    }

    /// After a resource was read to its end: its records not seen in this cycle (and not
    /// removed already) are published as removed, unless they are more than
    /// `max_removed_percent` of its live records: then none is, and the cycle says why.
    async fn sweep(&self, resource: &str, cycle: &mut Cycle) -> Result<(), CycleError> {
        // The records seen must have their `last_seen` of this cycle first.
        self.flush(cycle).await?;
        let gone = self
            .hashes
            .unseen(&self.name, resource, cycle.fetched_at)
            .await?;
        if gone.is_empty() {
            return Ok(());
        }
        let live = self.hashes.live(&self.name, resource).await?;
        if let Some(refusal) = removal_guard(gone.len() as u64, live, self.max_removed_percent) {
            tracing::warn!(provider = %self.name, resource, gone = gone.len(), live, "{refusal}");
            metrics::counter!("eye_fetch_removals_refused_total", "provider" => self.name.clone())
                .increment(1);
            let refusal = format!("{resource}: {refusal}");
            cycle.report.removals_refused = Some(match cycle.report.removals_refused.take() {
                Some(before) => format!("{before}; {refusal}"),
                None => refusal,
            });
            return Ok(());
        }
        for (remote_id, hash) in gone {
            cycle.add(Record::Item(ItemRecord::removal(
                resource, &remote_id, &hash,
            )));
            if cycle.chunk.len() >= CHUNK {
                self.flush(cycle).await?;
            }
        }
        self.flush(cycle).await
    }

    /// Publishes the chunk's changed records, then records its hashes.
    async fn flush(&self, cycle: &mut Cycle) -> Result<(), CycleError> {
        let mut chunk = std::mem::take(&mut cycle.chunk);
        if chunk.is_empty() {
            return Ok(());
        }
        let keys: Vec<_> = chunk.keys().cloned().collect();
        let known = self
            .hashes
            .load(&self.name, &keys.iter().collect::<Vec<_>>())
            .await?;
        let mut envelopes = Vec::new();
        for (key, (hash, record)) in &mut chunk {
            let previous = known.get(key);
            if previous != Some(hash) {
                match record {
                    Record::Plan(_) => cycle.report.changed += 1,
                    Record::Item(item) => {
                        item.previous_hash = previous.cloned();
                        if item.removed {
                            cycle.report.removed += 1;
                        } else {
                            cycle.report.changed += 1;
                        }
                    }
                    Record::Rejected(_) => {}
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
            Record::Item(item) => {
                if !item.removed {
                    self.report.plans += 1;
                }
                (
                    (item.resource.clone(), item.remote_id.clone()),
                    item.content_hash(),
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
