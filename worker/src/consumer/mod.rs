//! The only lapin user of the worker: consumes the events queue in batches, hands each batch
//! to the pipeline, and acks it only after the commit.

mod acks;
mod poison;

pub use poison::run as run_poison;

use std::sync::Arc;
use std::time::Duration;

use eye_core::amqp;
use futures::StreamExt;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Batch, Pipeline, Verdict};
use crate::settings::WorkerSettings;
use crate::storage::Store;
use acks::Acks;

/// Why a consuming session ended.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("broker: {0}")]
    Setup(#[from] amqp::AmqpSetupError),
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    Cancelled,
}

/// Consumes until `shutdown`, reconnecting with backoff when the broker goes away.
pub async fn run(
    settings: &WorkerSettings,
    pipeline: Arc<Pipeline>,
    store: &Store,
    shutdown: &CancellationToken,
) {
    supervise("consumer", settings, shutdown, || async {
        let queue = settings.amqp.topology().queue;
        let open = open(
            settings,
            Queue::new(&queue, settings.prefetch, "eye_queue_depth"),
        )
        .await?;
        let done = session(settings, &open, &pipeline, store, shutdown).await;
        open.close().await;
        done
    })
    .await;
}

/// Runs `session` until it ends cleanly (shutdown), starting it again with backoff after
/// each broker failure.
async fn supervise<F, Fut>(
    what: &str,
    settings: &WorkerSettings,
    shutdown: &CancellationToken,
    mut session: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ConsumerError>>,
{
    let mut reconnect = settings.retry_backoff();
    while !shutdown.is_cancelled() {
        match session().await {
            Ok(()) => return,
            Err(e) => {
                let pause = reconnect.next().unwrap_or(settings.retry_max());
                tracing::warn!(error = %e, ?pause, "{what} stopped; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {},
                }
            }
        }
    }
}

/// A queue to consume, and the gauge its depth is published as.
struct Queue<'a> {
    name: &'a str,
    prefetch: u16,
    depth_gauge: &'static str,
}

impl<'a> Queue<'a> {
    fn new(name: &'a str, prefetch: u16, depth_gauge: &'static str) -> Self {
        Self {
            name,
            prefetch,
            depth_gauge,
        }
    }
}

/// A connection consuming one queue, with its depth watched on a channel of its own (so the
/// gauge keeps moving while deliveries wait for the database).
struct Open {
    connection: lapin::Connection,
    channel: Channel,
    consumer: lapin::Consumer,
    depth: JoinHandle<()>,
}

/// Connects, declares the topology (idempotently: either service may start first) and
/// starts consuming `queue`.
async fn open(settings: &WorkerSettings, queue: Queue<'_>) -> Result<Open, ConsumerError> {
    let topology = settings.amqp.topology();
    let connection = amqp::connect(&settings.amqp, "eye-worker").await?;
    let channel = connection.create_channel().await?;
    amqp::declare(&channel, &topology).await?;
    channel
        .basic_qos(queue.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.name.into(),
            format!("eye-worker-{}", std::process::id()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = queue.name, prefetch = queue.prefetch, "consuming");
    let depth = tokio::spawn(watch_depth(
        connection.create_channel().await?,
        queue.name.to_owned(),
        queue.depth_gauge,
    ));
    Ok(Open {
        connection,
        channel,
        consumer,
        depth,
    })
}

impl Open {
    /// Closing the channel hands every delivery not acked yet back to the queue.
    async fn close(self) {
        self.depth.abort();
        let _ = self.channel.close(200, "worker shutting down".into()).await;
        let _ = self
            .connection
            .close(200, "worker shutting down".into())
            .await;
    }
}

/// One connection's life: consume batches until shutdown (Ok) or a broker failure (Err).
async fn session(
    settings: &WorkerSettings,
    open: &Open,
    pipeline: &Arc<Pipeline>,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<(), ConsumerError> {
    let channel = &open.channel;
    let mut consumer = open.consumer.clone();
    let batch_size = usize::from(settings.batch_size);
    let max_in_flight = usize::from(settings.commits_in_flight);
    // Commits run concurrently (PostgreSQL commits in parallel) but are acked strictly in
    // delivery order, so one `multiple` ack per batch stays correct.
    let mut acks: Acks<JoinHandle<bool>> = Acks::default();
    // Messages are judged as they arrive, so the batch in hand is verdicts, not raw bodies.
    let mut batch = Batch::default();
    'consume: loop {
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            done = oldest(&mut acks), if !acks.is_empty() => {
                settle(channel, &mut acks, done).await?;
                if acks.is_broken() {
                    break;
                }
                continue;
            }
            next = consumer.next() => next.ok_or(ConsumerError::Cancelled)??,
        };
        let mut last_tag = first.delivery_tag;
        let mut messages = 1;
        pipeline.judge(&first.data, &mut batch);
        let deadline = Instant::now() + settings.batch_linger();
        while batch.len() < batch_size {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(delivery)) => {
                    let delivery = delivery?;
                    last_tag = delivery.delivery_tag;
                    messages += 1;
                    pipeline.judge(&delivery.data, &mut batch);
                }
                Ok(None) => return Err(ConsumerError::Cancelled),
                Err(_linger_over) => break,
            }
        }
        let commit = tokio::spawn(commit(
            settings.retry_backoff(),
            settings.retry_max(),
            store.clone(),
            std::mem::take(&mut batch),
            messages,
            shutdown.clone(),
        ));
        acks.push(commit, last_tag);
        while acks.len() >= max_in_flight {
            let done = oldest(&mut acks).await;
            settle(channel, &mut acks, done).await?;
            if acks.is_broken() {
                break 'consume;
            }
        }
    }
    // Finish and ack the batches in hand, in order, unless one of them failed: then nothing
    // more may be acked, and closing the channel hands them all back.
    while !acks.is_empty() && !acks.is_broken() {
        let done = oldest(&mut acks).await;
        settle(channel, &mut acks, done).await?;
    }
    while let Some(commit) = acks.oldest() {
        commit.abort();
        acks.settle(false);
    }
    tracing::info!("consumer stopping");
    Ok(())
}

/// Commits a judged batch, retrying with backoff while the database is unavailable (rows
/// it refuses are dead-lettered by the store, never retried). Returns false when shutdown
/// came first.
async fn commit(
    mut retry: backon::ExponentialBackoff,
    retry_max: Duration,
    store: Store,
    batch: Batch,
    messages: usize,
    shutdown: CancellationToken,
) -> bool {
    loop {
        let started = std::time::Instant::now();
        match store.commit(&batch.verdicts).await {
            Ok(done) => {
                metrics::histogram!("eye_worker_commit_seconds").record(started.elapsed());
                metrics::histogram!("eye_worker_batch_rows").record(batch.len() as f64);
                metrics::counter!("eye_worker_events_stored_total").increment(done.stored);
                metrics::counter!("eye_worker_events_duplicate_total").increment(done.duplicates);
                let now = chrono::Utc::now();
                let lag = metrics::histogram!("eye_worker_received_to_stored_seconds");
                for verdict in &batch.verdicts {
                    if let Verdict::Store { envelope, .. } = verdict {
                        lag.record((now - envelope.received_at).as_seconds_f64());
                    }
                }
                tracing::debug!(
                    messages,
                    stored = done.stored,
                    duplicates = done.duplicates,
                    dead_lettered = done.dead_lettered,
                    refused_by_database = done.refused_by_database,
                    "batch committed"
                );
                return true;
            }
            Err(e) => {
                metrics::counter!("eye_worker_commit_failures_total").increment(1);
                let pause = retry.next().unwrap_or(retry_max);
                tracing::warn!(error = %e, ?pause, rows = batch.len(), "commit failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(pause) => {},
                }
            }
        }
    }
}

/// Waits for the oldest batch's commit; true when it committed.
async fn oldest(acks: &mut Acks<JoinHandle<bool>>) -> bool {
    match acks.oldest() {
        Some(commit) => commit.await.unwrap_or(false),
        None => std::future::pending().await,
    }
}

/// Settles the oldest batch: acks it (and, `multiple`, every delivery before it) if it and
/// every batch before it committed.
async fn settle(
    channel: &Channel,
    acks: &mut Acks<JoinHandle<bool>>,
    committed: bool,
) -> Result<(), ConsumerError> {
    if let Some(tag) = acks.settle(committed) {
        // One ack covers the whole batch and every earlier one: this channel has a single
        // consumer and batches are settled in delivery order.
        channel
            .basic_ack(tag, BasicAckOptions { multiple: true })
            .await?;
    }
    Ok(())
}

/// Publishes a queue's depth as a gauge every few seconds.
async fn watch_depth(channel: Channel, queue: String, gauge: &'static str) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    loop {
        if let Ok(q) = channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
        {
            metrics::gauge!(gauge).set(f64::from(q.message_count()));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
