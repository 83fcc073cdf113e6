//! `eye-dispatcher`: sends stored events to the applications' webhook endpoints.
//!
//! The worker writes one outbox row per (subscription, event) in the transaction that
//! stores the event (`webhook_deliveries`); this process claims due rows per endpoint, signs
//! (Standard Webhooks), sends, and records every attempt. See ARCHITECTURE.md, "Webhooks".

pub mod endpoint;
pub mod guard;
pub mod outbox;
pub mod payload;
pub mod recorder;
pub mod schedule;
pub mod sender;
pub mod settings;
pub mod upkeep;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use sender::{Outcome, SendSettings, Sender};
pub use settings::DispatcherSettings;

use endpoint::Shared;
use outbox::Subscription;

/// The dispatcher's pool: lazy, as every service's, and planning each statement for its
/// parameters. The outbox grows from empty to hundreds of thousands of rows within minutes,
/// and PostgreSQL's cached generic plan of a prepared statement, made while the table was
/// small, kept reading it whole (`make bench-webhooks`, 70 s: 3,901 sequential scans of
/// `webhook_deliveries` reading 46.8 million rows; the machine's CPU 47 % busy at the start,
/// 96 % at the end, and the first-attempt p99 growing all along). A plan per execution
/// costs a fraction of a millisecond.
pub async fn database(
    settings: &DispatcherSettings,
) -> Result<sea_orm::DatabaseConnection, sea_orm::DbErr> {
    let mut options = settings.database.connect_options();
    options.map_sqlx_postgres_opts(|opts| opts.options([("plan_cache_mode", "force_custom_plan")]));
    sea_orm::Database::connect(options).await
}

/// A dispatcher ready to run.
pub struct Dispatcher {
    shared: Arc<Shared>,
    refresh: Duration,
    recorder: tokio::task::JoinHandle<()>,
    /// Vacuum `webhook_deliveries` past this many dead rows, checked this often (0: never).
    vacuum: (u64, Duration),
}

/// A running endpoint task and how to reach it.
struct Running {
    settings: watch::Sender<Subscription>,
    stop: CancellationToken,
}

impl Dispatcher {
    /// Checks the settings (refusing a bad schedule or allow-list) and prepares a lazy pool.
    pub async fn build(settings: DispatcherSettings) -> anyhow::Result<Self> {
        let schedule = settings.schedule()?;
        let sender = Sender::new(&settings.send)?;
        let db = database(&settings).await?;
        let disable_after = Duration::from_secs(settings.disable_after_secs);
        let (recorder, recording) = recorder::Recorder::spawn(db.clone(), disable_after);
        Ok(Self {
            shared: Arc::new(Shared {
                db,
                sender,
                recorder,
                schedule,
                jitter: settings.jitter,
                concurrency: settings.concurrency,
                poll: Duration::from_millis(settings.poll_ms),
                lease: settings.lease(),
            }),
            refresh: Duration::from_millis(settings.refresh_ms),
            recorder: recording,
            vacuum: (
                settings.vacuum_dead_rows,
                Duration::from_millis(settings.vacuum_check_ms),
            ),
        })
    }

    /// Keeps one task per enabled subscription (started, updated, stopped as the
    /// subscriptions change) until `shutdown`; then lets attempts in flight finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut running: HashMap<Uuid, Running> = HashMap::new();
        let mut tasks = JoinSet::new();
        let (dead_rows, every) = self.vacuum;
        let upkeep = (dead_rows > 0).then(|| {
            tokio::spawn(upkeep::run(
                self.shared.db.clone(),
                every,
                dead_rows,
                shutdown.clone(),
            ))
        });
        while !shutdown.is_cancelled() {
            match outbox::subscriptions(&self.shared.db).await {
                Ok(subscriptions) => {
                    let mut seen = std::collections::HashSet::new();
                    for sub in subscriptions {
                        seen.insert(sub.id);
                        match running.get(&sub.id) {
                            Some(task) => {
                                task.settings.send_if_modified(|current| {
                                    let changed = *current != sub;
                                    *current = sub.clone();
                                    changed
                                });
                            }
                            None => {
                                let (tx, rx) = watch::channel(sub.clone());
                                let stop = shutdown.child_token();
                                tasks.spawn(endpoint::run(
                                    Arc::clone(&self.shared),
                                    rx,
                                    stop.clone(),
                                ));
                                running.insert(sub.id, Running { settings: tx, stop });
                            }
                        }
                    }
                    running.retain(|id, task| {
                        let keep = seen.contains(id);
                        if !keep {
                            task.stop.cancel();
                        }
                        keep
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot load the webhook subscriptions"),
            }
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(self.refresh) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        if let Some(upkeep) = upkeep {
            let _ = upkeep.await;
        }
        // The last handle goes with `shared`; the recorder then writes what is queued and ends.
        drop(self.shared);
        let _ = self.recorder.await;
        tracing::info!("dispatcher stopped");
    }
}
