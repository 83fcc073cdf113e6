//! The broker link: a supervisor task keeps one connection with a few confirm-mode channels
//! and replaces it when it breaks, on the next broker address when several are configured
//! (the nodes of a cluster, see [`amqp::connect`]). While there is none, publishing fails at
//! once (the api's 503) instead of hanging. Shared by every producer: the api's group-commit publisher and
//! the provider fetcher.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Topology;
use crate::amqp;
use crate::queue::{CONTENT_TYPE, EVENT_ROUTING_KEY};
use crate::settings::AmqpSettings;

/// Why an event was not confirmed: nothing was promised. [`PublishError::may_be_stored`]
/// tells the two cases a client must hear apart: the event never left (safe to retry in
/// any way) or its message reached the broker unconfirmed (it may be stored: retry with the
/// same `id`, or it will be stored twice).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to the broker")]
    NotConnected,
    #[error("the broker is blocking publishers (resource alarm)")]
    Blocked,
    #[error("too many events are waiting to be published")]
    Overloaded,
    #[error("no message could take the event within {0:?} (the broker is slow)")]
    NotPublished(Duration),
    #[error("the broker did not confirm within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused the message ({0})")]
    Refused(&'static str),
    #[error("the broker connection failed")]
    Broker,
    #[error("the publisher is shutting down")]
    Closed,
}

impl PublishError {
    /// Whether the message may have reached the broker and be stored in spite of the error:
    /// a confirm that did not come in time, or a connection lost while waiting for it. A
    /// refusal (nack, unroutable) means the broker did not take the message.
    pub fn may_be_stored(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Broker)
    }
}

/// AMQP delivery mode of messages that survive a broker restart.
const PERSISTENT: u8 = 2;
/// How often the supervisor looks at the connection's health.
const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(250);

/// The current link, if any, and the supervisor keeping it.
pub struct LinkSlot {
    link: RwLock<Option<Arc<Link>>>,
    broken: Notify,
    topology: Topology,
    stop: CancellationToken,
}

/// One live connection and its confirm-mode channels, used round-robin. Publishes pipeline
/// on each channel, so concurrent messages never wait on each other's confirm.
struct Link {
    connection: Connection,
    channels: Vec<Channel>,
    next: AtomicUsize,
}

impl LinkSlot {
    /// Starts the supervisor, which connects in the background.
    pub fn start(amqp: AmqpSettings, channels: u16, name: &'static str) -> Arc<Self> {
        let slot = Arc::new(Self {
            link: RwLock::new(None),
            broken: Notify::new(),
            topology: amqp.topology(),
            stop: CancellationToken::new(),
        });
        tokio::spawn(supervise(slot.clone(), amqp, channels, name));
        slot
    }

    /// Whether a connection with open channels is in hand and not blocked.
    pub fn is_up(&self) -> bool {
        self.current()
            .is_some_and(|link| link.healthy() && !link.connection.status().blocked())
    }

    /// Publishes one message body persistently; Ok only once the broker confirmed it.
    pub async fn publish(&self, body: &[u8], timeout: Duration) -> Result<(), PublishError> {
        let link = self.current().ok_or(PublishError::NotConnected)?;
        if link.connection.status().blocked() {
            return Err(PublishError::Blocked);
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type(CONTENT_TYPE.into())
            .with_message_id(Uuid::now_v7().to_string().into())
            .with_timestamp(chrono::Utc::now().timestamp().unsigned_abs());
        // mandatory: a message no queue would take comes back instead of vanishing.
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let channel = link.pick();
        let confirmed = async {
            channel
                .basic_publish(
                    self.topology.exchange.as_str().into(),
                    EVENT_ROUTING_KEY.into(),
                    options,
                    body,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(timeout, confirmed).await {
            Err(_) => Err(PublishError::Timeout(timeout)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "publish failed");
                self.broken.notify_one();
                Err(PublishError::Broker)
            }
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => Err(PublishError::Refused("unroutable")),
            Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Refused("nack")),
            Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::Refused("no confirm")),
        }
    }

    /// Messages waiting in the ingest queue and in the poison queue (the admin console's
    /// Overview), asked with passive declares on a channel of their own: a passive declare of
    /// a missing queue closes its channel, which must not be a publishing one. None while the
    /// link is down or the broker does not answer.
    pub async fn queue_depths(&self) -> Option<(u32, u32)> {
        let link = self.current()?;
        let channel = link.connection.create_channel().await.ok()?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let mut depths = [0u32; 2];
        for (depth, queue) in depths
            .iter_mut()
            .zip([&self.topology.queue, &self.topology.poison_queue])
        {
            *depth = channel
                .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                .await
                .ok()?
                .message_count();
        }
        let _ = channel.close(200, "depth read".into()).await;
        Some((depths[0], depths[1]))
    }

    /// Waits until a link is up, at most `within`; whether it is.
    pub async fn wait_up(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.is_up() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops the supervisor without waiting (for `Drop`); the connection goes with it.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops the supervisor and closes the connection.
    pub async fn close(&self) {
        self.stop.cancel();
        let link = self.link.write().ok().and_then(|mut l| l.take());
        if let Some(link) = link {
            let _ = link.connection.close(200, "shutting down".into()).await;
        }
    }

    fn current(&self) -> Option<Arc<Link>> {
        self.link.read().ok().and_then(|l| l.clone())
    }
}

impl Link {
    fn pick(&self) -> &Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        &self.channels[i]
    }

    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.channels.iter().all(|c| c.status().connected())
    }
}

async fn open(
    amqp: &AmqpSettings,
    topology: &Topology,
    channels: u16,
    name: &str,
) -> Result<Link, amqp::AmqpSetupError> {
    let connection = amqp::connect(amqp, name).await?;
    let mut opened = Vec::with_capacity(usize::from(channels));
    for i in 0..channels {
        let channel = connection.create_channel().await?;
        if i == 0 {
            amqp::declare(&channel, topology).await?;
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        opened.push(channel);
    }
    Ok(Link {
        connection,
        channels: opened,
        next: AtomicUsize::new(0),
    })
}

async fn supervise(inner: Arc<LinkSlot>, amqp: AmqpSettings, channels: u16, name: &'static str) {
    let backoff = || crate::backoff::forever(Duration::from_millis(100), Duration::from_secs(5));
    let mut retry = backoff();
    while !inner.stop.is_cancelled() {
        let link = match open(&amqp, &inner.topology, channels, name).await {
            Ok(link) => Arc::new(link),
            Err(e) => {
                let pause = retry.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, ?pause, "cannot reach the broker; retrying");
                tokio::select! {
                    () = inner.stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        retry = backoff();
        tracing::info!(exchange = %inner.topology.exchange, channels, "publisher connected");
        if let Ok(mut slot) = inner.link.write() {
            *slot = Some(link.clone());
        }
        loop {
            tokio::select! {
                () = inner.stop.cancelled() => return,
                () = inner.broken.notified() => break,
                () = tokio::time::sleep(HEALTH_CHECK_EVERY) => {
                    if !link.healthy() {
                        break;
                    }
                }
            }
        }
        tracing::warn!("publisher lost the broker; reconnecting");
        if let Ok(mut slot) = inner.link.write() {
            *slot = None;
        }
        let _ = link.connection.close(200, "reconnecting".into()).await;
    }
}
