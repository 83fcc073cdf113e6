//! Building the worker from its settings, and running it until told to stop.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::consumer;
use crate::erasure;
use crate::importer;
use crate::partitions;
use crate::pipeline::Pipeline;
use crate::settings::WorkerSettings;
use crate::storage::Store;
use crate::storage::json_records::JsonRecordProjection;
use crate::storage::plans::PlanProjection;
use crate::storage::webhooks::WebhookProjection;
use crate::validation::{Registry, default_rules};

/// A worker ready to consume.
pub struct Worker {
    settings: WorkerSettings,
    pipeline: Arc<Pipeline>,
    store: Store,
    webhooks: WebhookProjection,
    db: sea_orm::DatabaseConnection,
}

impl Worker {
    /// Checks the settings and the validation rules (refusing to start on a bad one) and
    /// prepares a lazy database pool, so the worker starts even while the database is down.
    pub async fn build(settings: WorkerSettings) -> anyhow::Result<Self> {
        let registry = Registry::builtin();
        let validators = match &settings.rules_file {
            Some(path) => registry.load(path)?,
            None => registry.build(&default_rules(settings.max_future_skew_secs))?,
        };
        let db = settings.database.connect().await?;
        let webhooks = WebhookProjection::default();
        Ok(Self {
            pipeline: Arc::new(Pipeline::new(validators)),
            store: Store::new(
                db.clone(),
                vec![
                    Arc::new(PlanProjection),
                    Arc::new(JsonRecordProjection),
                    Arc::new(webhooks.clone()),
                ],
            ),
            webhooks,
            db,
            settings,
        })
    }

    /// Consumes the events queue, and records what reaches the poison queue, until `shutdown`
    /// is cancelled; then finishes and acks the batch in hand.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        tokio::join!(
            consumer::run(
                &self.settings,
                self.pipeline.clone(),
                &self.store,
                &shutdown
            ),
            consumer::run_poison(&self.settings, &self.store, &shutdown),
            erasure::run(&self.settings, &self.store, &shutdown),
            partitions::run(&self.settings, &self.store, &shutdown),
            self.webhooks
                .keep_fresh(&self.db, self.settings.webhook_refresh(), &shutdown),
            importer::run(
                &self.settings,
                self.pipeline.clone(),
                &self.store,
                &shutdown
            ),
        );
        tracing::info!("worker stopped");
    }
}
