//! The broker side of the queue contract: declaring the exchanges and queues of a
//! [`Topology`]. Producers and consumers both declare (idempotently), so either may start
//! first.

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

/// Connects within the configured timeout.
pub async fn connect(settings: &AmqpSettings, name: &str) -> Result<Connection, AmqpSetupError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let timeout = settings.connect_timeout();
    tokio::time::timeout(timeout, Connection::connect(settings.url.expose(), props))
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
            quorum_args(&[]),
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
    let ingest_args = quorum_args(&[
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
    ]);
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

fn quorum_args(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    for (key, value) in extra {
        args.insert(ShortString::from(*key), value.clone());
    }
    args
}
