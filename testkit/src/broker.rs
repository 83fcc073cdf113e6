//! Direct broker access for tests: raw publishes (as a buggy producer or a redelivery would
//! present them), queue depth, and cleanup.

use eye_core::Topology;
use eye_core::queue::EVENT_ROUTING_KEY;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::amqp_url;

async fn connect() -> Connection {
    Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ")
}

/// Publishes `body` persistently to the namespace's events exchange, waiting for the confirm.
pub async fn publish_raw(namespace: &str, body: &[u8]) {
    publish_to(&Topology::new(namespace).exchange, EVENT_ROUTING_KEY, body).await;
}

/// Publishes `body` to the namespace's poison exchange, as the broker does with a message past
/// the delivery limit (without the `x-death` headers it would add).
pub async fn publish_poison(namespace: &str, body: &[u8]) {
    publish_to(&Topology::new(namespace).poison_exchange, "", body).await;
}

async fn publish_to(exchange: &str, routing_key: &str, body: &[u8]) {
    let connection = connect().await;
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(
        matches!(confirm, lapin::Confirmation::Ack(None)),
        "raw publish not routed: {confirm:?}"
    );
    let _ = connection.close(200, "done".into()).await;
}

/// Messages ready (not yet delivered) in the namespace's events queue.
pub async fn queue_depth(namespace: &str) -> u32 {
    depth_of(&Topology::new(namespace).queue).await
}

/// Messages ready (not yet delivered) in the namespace's poison queue.
pub async fn poison_depth(namespace: &str) -> u32 {
    depth_of(&Topology::new(namespace).poison_queue).await
}

async fn depth_of(queue: &str) -> u32 {
    let connection = connect().await;
    let channel = connection.create_channel().await.expect("channel");
    let queue = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue exists");
    let _ = connection.close(200, "done".into()).await;
    queue.message_count()
}

/// Deletes the namespace's queues and exchanges.
pub async fn delete_namespace(namespace: &str) {
    let Ok(connection) = Connection::connect(&amqp_url(), ConnectionProperties::default()).await
    else {
        return;
    };
    let topology = Topology::new(namespace);
    if let Ok(channel) = connection.create_channel().await {
        for queue in [&topology.queue, &topology.poison_queue] {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [&topology.exchange, &topology.poison_exchange] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}
