//! The poison queue's consumer. The broker moves a message to `<ns>.events.poison` once it
//! has been delivered more often than the delivery limit allows without an ack (workers killed
//! or cut off mid-batch again and again). No worker judged its events, so without this they
//! would sit there unseen: each is recorded as a `poisoned` dead letter under its own
//! application and id (listed by `/errors`, answered by `/events/{id}/status`, replayable),
//! and only then is the message acked. Its own connection and a small prefetch: poison is
//! rare, and recording it must never hold up the events queue.

use futures::StreamExt;
use lapin::options::BasicAckOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use tokio_util::sync::CancellationToken;

use super::{ConsumerError, Queue, open, supervise};
use crate::settings::WorkerSettings;
use crate::storage::{Poisoning, Store};

/// Messages the broker sends ahead; each is recorded and acked on its own.
const PREFETCH: u16 = 8;

/// Records poisoned messages until `shutdown`, reconnecting with backoff when the broker goes
/// away. A message not recorded yet goes back to the poison queue: nothing is acked unseen.
pub async fn run(settings: &WorkerSettings, store: &Store, shutdown: &CancellationToken) {
    supervise("poison consumer", settings, shutdown, || async {
        let queue = settings.amqp.topology().poison_queue;
        let open = open(
            settings,
            Queue::new(&queue, PREFETCH, "eye_poison_queue_depth"),
        )
        .await?;
        let consumed = consume(
            &open.channel,
            open.consumer.clone(),
            settings,
            store,
            shutdown,
        )
        .await;
        open.close().await;
        consumed
    })
    .await;
}

async fn consume(
    channel: &Channel,
    mut consumer: Consumer,
    settings: &WorkerSettings,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<(), ConsumerError> {
    loop {
        let delivery = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            next = consumer.next() => next.ok_or(ConsumerError::Cancelled)??,
        };
        let why = poisoning(delivery.properties.headers().as_ref());
        if !record(settings, store, &delivery.data, &why, shutdown).await {
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
    store: &Store,
    body: &[u8],
    why: &Poisoning,
    shutdown: &CancellationToken,
) -> bool {
    let mut retry = settings.retry_backoff();
    loop {
        match store.record_poisoned(body, why).await {
            Ok(recorded) => {
                metrics::counter!("eye_worker_poisoned_total").increment(recorded);
                tracing::warn!(
                    recorded,
                    deliveries = ?why.deliveries,
                    "poisoned message recorded as dead letters"
                );
                return true;
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
