//! The webhook outbox, a [`Projection`]: for each stored event that an enabled subscription
//! of its application wants, one `webhook_deliveries` row, written in the transaction that
//! stores the event, so a stored event is never without its deliveries (and an event not
//! stored never has one). The subscriptions are cached (reloaded every
//! `EYE_WEBHOOK_REFRESH_MS`): an application without subscriptions costs a hash lookup per
//! event and no statement.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use eye_core::Envelope;
use eye_core::webhook::{Filter, passes};
use futures::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult,
    Statement, Value,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{MAX_PARAMS, Projection};

/// A subscription as the worker matches events against it.
#[derive(Debug, Clone)]
struct Wanted {
    id: Uuid,
    filters: Vec<Filter>,
}

type ByApp = HashMap<String, Vec<Wanted>>;

/// The outbox projection, with its cache of enabled subscriptions by application.
#[derive(Debug, Clone, Default)]
pub struct WebhookProjection {
    subscriptions: Arc<RwLock<ByApp>>,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    id: Uuid,
    app_id: String,
    filters: String,
}

impl WebhookProjection {
    /// The subscriptions `envelope`'s event goes to.
    fn targets(&self, envelope: &Envelope) -> Vec<Uuid> {
        let Ok(subscriptions) = self.subscriptions.read() else {
            return Vec::new();
        };
        let Some(wanted) = subscriptions.get(&envelope.app_id) else {
            return Vec::new();
        };
        let event = &envelope.event;
        wanted
            .iter()
            .filter(|w| passes(&w.filters, &event.category, &event.name))
            .map(|w| w.id)
            .collect()
    }

    /// Reloads the enabled subscriptions.
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let rows = Row::find_by_statement(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id, app_id, filters::text AS filters FROM webhook_subscriptions WHERE enabled",
        ))
        .all(db)
        .await?;
        let mut by_app = ByApp::new();
        for row in rows {
            let filters = serde_json::from_str(&row.filters).unwrap_or_default();
            by_app.entry(row.app_id).or_default().push(Wanted {
                id: row.id,
                filters,
            });
        }
        if let Ok(mut cache) = self.subscriptions.write() {
            *cache = by_app;
        }
        Ok(())
    }

    /// Reloads every `every` until `shutdown`.
    pub async fn keep_fresh(
        &self,
        db: &DatabaseConnection,
        every: Duration,
        shutdown: &CancellationToken,
    ) {
        while !shutdown.is_cancelled() {
            if let Err(e) = self.reload(db).await {
                tracing::warn!(error = %e, "cannot reload the webhook subscriptions");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

impl Projection for WebhookProjection {
    fn follows(&self, envelope: &Envelope) -> bool {
        !self.targets(envelope).is_empty()
    }

    fn write<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        stored: Vec<&'a Envelope>,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let mut rows: Vec<(Uuid, Uuid, &str)> = Vec::new();
            for envelope in stored {
                for subscription in self.targets(envelope) {
                    rows.push((subscription, envelope.event.id, &envelope.app_id));
                }
            }
            for chunk in rows.chunks(MAX_PARAMS / 3) {
                insert(txn, chunk).await?;
            }
            Ok(())
        })
    }
}

/// One delivery per (subscription, event); a redelivered event adds none.
async fn insert(txn: &DatabaseTransaction, rows: &[(Uuid, Uuid, &str)]) -> Result<(), DbErr> {
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 3);
    let mut tuples = Vec::with_capacity(rows.len());
    for (i, (subscription, event, app)) in rows.iter().enumerate() {
        tuples.push(format!("(${}, ${}, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3));
        values.extend([(*subscription).into(), (*event).into(), (*app).into()]);
    }
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO webhook_deliveries (subscription_id, event_id, app_id) VALUES {} \
             ON CONFLICT (subscription_id, event_id) DO NOTHING",
            tuples.join(", ")
        ),
        values,
    ))
    .await
    .map(|_| ())
}
