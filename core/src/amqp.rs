//! The broker side of the queue contract: declaring the exchanges and queues of a
//! [`Topology`]. Producers and consumers both declare (idempotently), so either may start
//! first.

use std::sync::atomic::{AtomicUsize, Ordering};

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::queue::{DELIVERY_LIMIT, EVENT_ROUTING_KEY, Topology};
use crate::settings::AmqpSettings;

/// Errors reaching or setting up the broker.
#[derive(Debug, thiserror::Error)]
pub enum AmqpSetupError {
    #[error("timed out connecting to the broker after {0:?}")]
    Timeout(std::time::Duration),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
}

/// Where the next connection of this process starts looking among the broker URLs: after a
/// node fails, the next attempt begins with the node after it, so a process never sticks to
/// a dead node while another answers.
static NEXT_URL: AtomicUsize = AtomicUsize::new(0);

/// Connects to the first broker URL that answers within the configured timeout, starting
/// after the one this process used last (see [`AmqpSettings::urls`]); the last error if
/// none does.
pub async fn connect(settings: &AmqpSettings, name: &str) -> Result<Connection, AmqpSetupError> {
    let urls = settings.urls();
    let start = NEXT_URL.load(Ordering::Relaxed);
    let mut last = None;
    for k in 0..urls.len() {
        let i = (start + k) % urls.len();
        match connect_to(urls[i], settings, name).await {
            Ok(connection) => {
                // The next connection (after this one breaks) tries the following node first.
                NEXT_URL.store(i + 1, Ordering::Relaxed);
                if urls.len() > 1 {
                    tracing::info!(
                        node = i + 1,
                        of = urls.len(),
                        name,
                        "connected to the broker"
                    );
                }
                return Ok(connection);
            }
            Err(e) => {
                if urls.len() > 1 {
                    tracing::warn!(node = i + 1, of = urls.len(), error = %e, "broker node unreachable; trying the next");
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(AmqpSetupError::Timeout(settings.connect_timeout())))
}

async fn connect_to(
    url: &str,
    settings: &AmqpSettings,
    name: &str,
) -> Result<Connection, AmqpSetupError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let timeout = settings.connect_timeout();
    tokio::time::timeout(timeout, Connection::connect(url, props))
        .await
        .map_err(|_| AmqpSetupError::Timeout(timeout))?
        .map_err(AmqpSetupError::from)
}

/// Declares the events exchange, the quorum queue bound to it, and the poison exchange and
/// queue that receive messages past the delivery limit.
pub async fn declare(channel: &Channel, topology: &Topology) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .exchange_declare(
            topology.poison_exchange.as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            topology.poison_queue.as_str().into(),
            durable_queue,
            quorum_args(topology, &[]),
        )
        .await?;
    channel
        .queue_bind(
            topology.poison_queue.as_str().into(),
            topology.poison_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    channel
        .exchange_declare(
            topology.exchange.as_str().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    let ingest_args = quorum_args(
        topology,
        &[
            ("x-delivery-limit", AMQPValue::LongLongInt(DELIVERY_LIMIT)),
            (
                "x-dead-letter-exchange",
                AMQPValue::LongString(topology.poison_exchange.as_str().into()),
            ),
            // at-least-once dead-lettering needs reject-publish overflow; it keeps a message
            // being moved to the poison queue from being lost on the way.
            (
                "x-dead-letter-strategy",
                AMQPValue::LongString("at-least-once".into()),
            ),
            ("x-overflow", AMQPValue::LongString("reject-publish".into())),
        ],
    );
    channel
        .queue_declare(topology.queue.as_str().into(), durable_queue, ingest_args)
        .await?;
    channel
        .queue_bind(
            topology.queue.as_str().into(),
            topology.exchange.as_str().into(),
            EVENT_ROUTING_KEY.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

fn quorum_args(topology: &Topology, extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    if let Some(size) = topology.quorum_size {
        args.insert(
            ShortString::from("x-quorum-initial-group-size"),
            AMQPValue::LongInt(i32::from(size)),
        );
    }
    for (key, value) in extra {
        args.insert(ShortString::from(*key), value.clone());
    }
    args
}
