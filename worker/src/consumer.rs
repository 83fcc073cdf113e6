//! The only lapin user of the worker: consumes the events queue in batches, hands each batch
//! to the pipeline, and acks it only after the commit.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use eye_core::amqp;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pipeline::Pipeline;
use crate::settings::WorkerSettings;

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
pub async fn run(settings: &WorkerSettings, pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    let mut reconnect = backoff(settings.retry_max());
    while !shutdown.is_cancelled() {
        match session(settings, &pipeline, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                let pause = reconnect.next().unwrap_or(settings.retry_max());
                tracing::warn!(error = %e, ?pause, "consumer stopped; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {},
                }
            }
        }
    }
}

/// One connection's life: consume batches until shutdown (Ok) or a broker failure (Err).
async fn session(
    settings: &WorkerSettings,
    pipeline: &Pipeline,
    shutdown: &CancellationToken,
) -> Result<(), ConsumerError> {
    let topology = settings.amqp.topology();
    let connection = amqp::connect(&settings.amqp, "eye-worker").await?;
    let channel = connection.create_channel().await?;
    amqp::declare(&channel, &topology).await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            topology.queue.as_str().into(),
            format!("eye-worker-{}", std::process::id()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %topology.queue, prefetch = settings.prefetch, "consuming");

    let batch_size = usize::from(settings.batch_size);
    let mut batch: Vec<Delivery> = Vec::with_capacity(batch_size);
    loop {
        let first = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = consumer.next() => next.ok_or(ConsumerError::Cancelled)??,
        };
        batch.push(first);
        let deadline = Instant::now() + settings.batch_linger();
        while batch.len() < batch_size {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(delivery)) => batch.push(delivery?),
                Ok(None) => return Err(ConsumerError::Cancelled),
                Err(_linger_over) => break,
            }
        }
        let Some(last_tag) = batch.last().map(|d| d.delivery_tag) else {
            continue;
        };
        if !commit(settings, pipeline, &batch, shutdown).await {
            // Shutting down while the database is unavailable: leave the batch unacked; the
            // broker hands it to the next worker.
            break;
        }
        // One ack covers the whole batch: this channel has a single consumer and batches
        // are committed in delivery order, so every earlier tag is settled too.
        channel
            .basic_ack(last_tag, BasicAckOptions { multiple: true })
            .await?;
        batch.clear();
    }
    tracing::info!("consumer stopping");
    // Closing the channel hands every prefetched, unacked message back to the queue.
    channel.close(200, "worker shutting down".into()).await?;
    connection.close(200, "worker shutting down".into()).await?;
    Ok(())
}

/// Judges and commits a batch, retrying the commit with backoff while the database fails.
/// Returns false when shutdown came first.
async fn commit(
    settings: &WorkerSettings,
    pipeline: &Pipeline,
    batch: &[Delivery],
    shutdown: &CancellationToken,
) -> bool {
    let judged = pipeline.judge_all(batch.iter().map(|d| d.data.as_slice()));
    let mut retry = backoff(settings.retry_max());
    loop {
        match pipeline.commit(judged.clone()).await {
            Ok(done) => {
                tracing::debug!(
                    messages = batch.len(),
                    stored = done.stored,
                    duplicates = done.duplicates,
                    dead_lettered = done.dead_lettered,
                    "batch committed"
                );
                return true;
            }
            Err(e) => {
                let pause = retry.next().unwrap_or(settings.retry_max());
                tracing::warn!(error = %e, ?pause, messages = batch.len(), "commit failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(pause) => {},
                }
            }
        }
    }
}

fn backoff(max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}
