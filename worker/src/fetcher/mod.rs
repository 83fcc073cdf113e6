//! The fetcher role: on each tick, fetch the provider's document, parse it as a stream,
//! publish the plans whose content hash changed (and the rejected records not published
//! before, which the workers dead-letter), then record the hashes. A failure at any step leaves the hashes
//! untouched, so the next tick publishes the same changes again (with the same event ids,
//! which the idempotent store absorbs).

mod settings;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{Database, DbErr};
use tokio_util::sync::CancellationToken;

pub use settings::FetcherSettings;

use crate::provider::fetch::{FetchError, HttpFetcher};
use crate::provider::hashes::{HashStore, Hashes};
use crate::provider::publish::ProviderPublisher;
use crate::provider::record::to_envelope;
use crate::provider::{self, Limits, Provider, Record, Rejected};
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
    provider: Box<dyn Provider>,
    http: HttpFetcher,
    hashes: HashStore,
    publisher: ProviderPublisher,
    limits: Limits,
    interval: Duration,
}

impl Fetcher {
    /// Checks the settings (unknown provider, bad URL) and prepares a lazy database pool.
    pub async fn build(settings: FetcherSettings) -> anyhow::Result<Self> {
        let provider = provider::builtin(&settings.provider).ok_or_else(|| {
            anyhow::anyhow!(
                "EYE_FETCH_PROVIDER: unknown provider {:?}",
                settings.provider
            )
        })?;
        reqwest::Url::parse(&settings.url)
            .map_err(|e| anyhow::anyhow!("EYE_FETCH_URL {:?}: {e}", settings.url))?;
        let db = Database::connect(settings.database.connect_options()).await?;
        Ok(Self {
            provider,
            http: HttpFetcher::new(settings.policy())?,
            hashes: HashStore::new(db),
            publisher: ProviderPublisher::start(settings.amqp.clone(), settings.publish_timeout()),
            limits: settings.limits(),
            interval: settings.interval(),
        })
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
                Ok(report) => tracing::info!(provider = self.provider.name(), ?report, "fetched"),
                Err(e) => {
                    tracing::warn!(provider = self.provider.name(), error = %e, "fetch cycle failed")
                }
            }
        }
        self.publisher.close().await;
        tracing::info!("fetcher stopped");
    }

    /// One cycle: fetch, parse, publish what changed, record the hashes. Records are
    /// judged as the parser hands them over, so only the changed ones are kept in memory.
    pub async fn run_once(&mut self) -> Result<CycleReport, CycleError> {
        let body = self.http.fetch().await?;
        let fetched_at = Utc::now();
        let name = self.provider.name().to_owned();
        let known = self.hashes.load(&name).await?;
        let mut report = CycleReport::default();
        let mut seen: Hashes = HashMap::with_capacity(known.len());
        let mut envelopes = Vec::new();
        let mut judge = |record: Record, report: &mut CycleReport| match &record {
            Record::Plan(plan) => {
                report.plans += 1;
                let hash = plan.content_hash();
                let key = (plan.base_plan_id.clone(), plan.plan_id.clone());
                if known.get(&key) != Some(&hash) {
                    report.changed += 1;
                    envelopes.push(to_envelope(&name, &record, fetched_at));
                }
                seen.insert(key, hash);
            }
            Record::Rejected(rejected) => {
                report.rejected += 1;
                let (key, digest) = (rejected.hash_key(), rejected.digest());
                if known.get(&key) != Some(&digest) {
                    envelopes.push(to_envelope(&name, &record, fetched_at));
                }
                seen.insert(key, digest);
            }
        };
        let parsed = self
            .provider
            .parse(&body, self.limits, &mut |r| judge(r, &mut report));
        drop(body);
        if let Err(e) = parsed {
            tracing::warn!(provider = %name, error = %e, "document not read to its end");
            report.document_error = Some(e.to_string());
            let rejected = Record::Rejected(Rejected {
                base_plan_id: None,
                plan_id: None,
                zone_id: None,
                position: e.position().unwrap_or(0),
                reason: format!("document: {e}"),
            });
            judge(rejected, &mut report);
        }
        self.publisher.publish(&envelopes).await?;
        self.hashes.record(&name, &seen, fetched_at).await?;
        metrics::counter!("eye_fetch_plans_changed_total", "provider" => name)
            .increment(report.changed as u64);
        Ok(report)
    }
}
