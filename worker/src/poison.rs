//! The poison queue's consumer. The broker moves a message to `<ns>.events.poison` once it
//! has been delivered more often than the delivery limit allows without an ack (workers killed
//! or cut off mid-batch again and again). No worker judged its events, so without this they
//! would sit there unseen: each is recorded as a `poisoned` dead letter under its own
//! application and id (listed by `/errors`, answered by `/events/{id}/status`, replayable),
//! and only then is the message acked. Its own connection and a small prefetch: poison is
//! rare, and recording it must never hold up the events queue.

mod rows;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use eye_core::amqp;
use eye_core::entity::{dead_letter, event};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, TransactionTrait};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use rows::{Poisoned, Poisoning, rows};

use crate::consumer::ConsumerError;
use crate::settings::WorkerSettings;

/// Messages the broker sends ahead; each is recorded and acked on its own.
const PREFETCH: u16 = 8;
/// How often `eye_poison_queue_depth` is refreshed.
const DEPTH_EVERY: Duration = Duration::from_secs(5);
/// Rows per INSERT: 17 columns each stays far below PostgreSQL's 65,535 bind parameters,
/// whatever a foreign producer put in one message.
const ROWS_PER_STATEMENT: usize = 1000;

/// Records poisoned messages until `shutdown`, reconnecting with backoff when the broker goes
/// away. A message not recorded yet goes back to the poison queue: nothing is acked unseen.
pub async fn run(settings: &WorkerSettings, db: &DatabaseConnection, shutdown: &CancellationToken) {
    let mut reconnect = settings.retry_backoff();
    while !shutdown.is_cancelled() {
        match session(settings, db, shutdown).await {
            Ok(()) => return,
            Err(e) => {
                let pause = reconnect.next().unwrap_or(settings.retry_max());
                tracing::warn!(error = %e, ?pause, "poison consumer stopped; reconnecting");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(pause) => {},
                }
            }
        }
    }
}

async fn session(
    settings: &WorkerSettings,
    db: &DatabaseConnection,
    shutdown: &CancellationToken,
) -> Result<(), ConsumerError> {
    let topology = settings.amqp.topology();
    let connection = amqp::connect(&settings.amqp, "eye-worker-poison").await?;
    let channel = connection.create_channel().await?;
    amqp::declare(&channel, &topology).await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            topology.poison_queue.as_str().into(),
            format!("eye-worker-poison-{}", std::process::id()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // Its own channel, so the gauge keeps moving while a message waits for the database.
    let depth = tokio::spawn(watch_depth(
        connection.create_channel().await?,
        topology.poison_queue,
    ));
    let consumed = consume(&channel, &mut consumer, settings, db, shutdown).await;
    depth.abort();
    // Closing the channel hands a message not recorded yet back to the poison queue.
    let _ = channel.close(200, "worker shutting down".into()).await;
    let _ = connection.close(200, "worker shutting down".into()).await;
    consumed
}

async fn consume(
    channel: &Channel,
    consumer: &mut Consumer,
    settings: &WorkerSettings,
    db: &DatabaseConnection,
    shutdown: &CancellationToken,
) -> Result<(), ConsumerError> {
    loop {
        let delivery = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            next = consumer.next() => next.ok_or(ConsumerError::Cancelled)??,
        };
        let why = poisoning(delivery.properties.headers().as_ref());
        if !record(settings, db, &delivery.data, &why, shutdown).await {
            return Ok(());
        }
        channel
            .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await?;
    }
}

/// Records one poisoned message, retrying while the database is away; false when shutdown
/// came first.
async fn record(
    settings: &WorkerSettings,
    db: &DatabaseConnection,
    body: &[u8],
    why: &Poisoning,
    shutdown: &CancellationToken,
) -> bool {
    let mut poisoned = rows(body, why, Utc::now());
    let mut whole = false;
    let mut retry = settings.retry_backoff();
    loop {
        match store(db, poisoned.clone()).await {
            Ok(recorded) => {
                metrics::counter!("eye_worker_poisoned_total").increment(recorded);
                tracing::warn!(
                    recorded,
                    events = poisoned.len(),
                    deliveries = ?why.deliveries,
                    "poisoned message recorded as dead letters"
                );
                return true;
            }
            // The database answers but refuses these rows (an application id too long for
            // its index, say): retrying would stall this queue forever, so the message is
            // kept whole, as one row of bytes, instead.
            Err(e) if !whole && db.ping().await.is_ok() => {
                tracing::error!(error = %e, "poisoned rows refused; recording the message whole");
                let detail = format!("its events could not be recorded one by one: {e}");
                poisoned = vec![rows::whole(body, why, &detail, Utc::now())];
                whole = true;
            }
            Err(e) => {
                let pause = retry.next().unwrap_or(settings.retry_max());
                tracing::warn!(error = %e, ?pause, "recording a poisoned message failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return false,
                    () = tokio::time::sleep(pause) => {},
                }
            }
        }
    }
}

/// Writes the rows in one transaction; returns how many were new or updated. An event already
/// stored is left out: its ack was what got lost, the event is not. An event that already has
/// a verdict (`invalid`, `warning`, `undecodable`) keeps it; a poisoned one seen again bumps
/// its `attempts` and `last_seen`.
async fn store(db: &DatabaseConnection, poisoned: Vec<Poisoned>) -> Result<u64, DbErr> {
    let stored = stored_already(db, &poisoned).await?;
    let rows: Vec<dead_letter::ActiveModel> = poisoned
        .into_iter()
        .filter(|p| p.key.as_ref().is_none_or(|k| !stored.contains(k)))
        .map(|p| p.row)
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let upsert = OnConflict::columns([dead_letter::Column::AppId, dead_letter::Column::EventId])
        .update_columns([
            dead_letter::Column::Message,
            dead_letter::Column::Reasons,
            dead_letter::Column::Payload,
            dead_letter::Column::Raw,
            dead_letter::Column::LastSeen,
        ])
        .value(
            dead_letter::Column::Attempts,
            Expr::cust("dead_letters.attempts + 1"),
        )
        .action_and_where(
            Expr::col((dead_letter::Entity, dead_letter::Column::Kind))
                .eq(dead_letter::KIND_POISONED),
        )
        .to_owned();
    let txn = db.begin().await?;
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        written += dead_letter::Entity::insert_many(chunk.to_vec())
            .on_conflict(upsert.clone())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(written)
}

/// The (application, event id) pairs among `poisoned` that are already stored, looked up by
/// the events' primary key.
async fn stored_already(
    db: &DatabaseConnection,
    poisoned: &[Poisoned],
) -> Result<HashSet<(String, Uuid)>, DbErr> {
    let keys: Vec<(String, Uuid)> = poisoned.iter().filter_map(|p| p.key.clone()).collect();
    let mut stored = HashSet::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let found: Vec<(String, Uuid)> = event::Entity::find()
            .select_only()
            .columns([event::Column::AppId, event::Column::Id])
            .filter(
                Expr::tuple([
                    Expr::col(event::Column::AppId),
                    Expr::col(event::Column::Id),
                ])
                .in_tuples(chunk.iter().cloned()),
            )
            .into_tuple()
            .all(db)
            .await?;
        stored.extend(found);
    }
    Ok(stored)
}

/// Reads what the broker stamped on a dead-lettered message: the first `x-death` entry's
/// reason and queue, and `x-delivery-count`.
fn poisoning(headers: Option<&FieldTable>) -> Poisoning {
    let Some(headers) = headers.map(FieldTable::inner) else {
        return Poisoning::default();
    };
    let death = headers
        .get("x-death")
        .and_then(AMQPValue::as_array)
        .and_then(|deaths| deaths.as_slice().first())
        .and_then(AMQPValue::as_field_table)
        .map(FieldTable::inner);
    let field = |death_key: &str, header: &str| {
        death
            .and_then(|d| d.get(death_key))
            .or_else(|| headers.get(header))
            .and_then(text)
    };
    Poisoning {
        reason: field("reason", "x-first-death-reason"),
        queue: field("queue", "x-first-death-queue"),
        deliveries: headers.get("x-delivery-count").and_then(integer),
    }
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn integer(value: &AMQPValue) -> Option<i64> {
    match *value {
        AMQPValue::ShortShortInt(n) => Some(n.into()),
        AMQPValue::ShortShortUInt(n) => Some(n.into()),
        AMQPValue::ShortInt(n) => Some(n.into()),
        AMQPValue::ShortUInt(n) => Some(n.into()),
        AMQPValue::LongInt(n) => Some(n.into()),
        AMQPValue::LongUInt(n) => Some(n.into()),
        AMQPValue::LongLongInt(n) => Some(n),
        _ => None,
    }
}

/// Publishes the poison queue's depth (messages waiting to be recorded) every few seconds.
async fn watch_depth(channel: Channel, queue: String) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    loop {
        if let Ok(q) = channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
        {
            metrics::gauge!("eye_poison_queue_depth").set(f64::from(q.message_count()));
        }
        tokio::time::sleep(DEPTH_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, ShortString};

    fn table(pairs: Vec<(&str, AMQPValue)>) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert(ShortString::from(k), v);
        }
        t
    }

    #[test]
    fn the_brokers_headers_say_why_and_how_often() {
        let death = table(vec![
            ("reason", AMQPValue::LongString("delivery_limit".into())),
            ("queue", AMQPValue::LongString("eye.events.ingest".into())),
            ("count", AMQPValue::LongLongInt(1)),
        ]);
        let headers = table(vec![
            (
                "x-death",
                AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])),
            ),
            ("x-delivery-count", AMQPValue::LongInt(21)),
        ]);
        assert_eq!(
            poisoning(Some(&headers)),
            Poisoning {
                reason: Some("delivery_limit".into()),
                queue: Some("eye.events.ingest".into()),
                deliveries: Some(21),
            }
        );
        let first_only = table(vec![(
            "x-first-death-reason",
            AMQPValue::LongString("delivery_limit".into()),
        )]);
        assert_eq!(
            poisoning(Some(&first_only)).reason.as_deref(),
            Some("delivery_limit")
        );
        assert_eq!(poisoning(None), Poisoning::default());
    }
}
