//! The batch scenario: users that send the same event mix through the client library
//! (`eye_client::Client::send_batch`, `POST /events/batch`, gzipped), a batch every
//! `--batch-every-ms`. The client assigns no id of its own here: each event carries the id the
//! mix gave it, so a retry by the client never doubles it and the ledger knows every id
//! answered `accepted`. Goose times each batch as the `batch` transaction (the client's
//! requests are not goose's, so its throttle does not pace them: the wait time does).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use eye_client::{Client, Event, Reason, RetryPolicy};
use goose::prelude::{Scenario, Transaction, TransactionFunction};
use serde_json::Value;
use uuid::Uuid;

use crate::ledger::Ledger;
use crate::payload::{EventMix, Expect, Generated};
use crate::settings::Settings;

/// What the batch users did, for the summary line.
#[derive(Debug, Default)]
pub struct BatchTally {
    pub batches: AtomicU64,
    pub accepted: AtomicU64,
    pub undelivered: AtomicU64,
}

impl BatchTally {
    /// The summary line, or None when no batch was sent.
    pub fn line(&self) -> Option<String> {
        let batches = self.batches.load(Ordering::Relaxed);
        (batches > 0).then(|| {
            format!(
                "POST /events/batch (eye-client send_batch): {batches} batches, {} events \
                 accepted, {} not delivered",
                self.accepted.load(Ordering::Relaxed),
                self.undelivered.load(Ordering::Relaxed)
            )
        })
    }
}

/// Shared by the batch users.
struct Sender {
    client: Client,
    mix: EventMix,
    size: usize,
    ledger: Arc<Ledger>,
    tally: Arc<BatchTally>,
}

impl Sender {
    async fn send_one_batch(&self) {
        let now = Utc::now();
        let generated: Vec<Generated> = {
            let mut rng = rand::rng();
            (0..self.size)
                .map(|_| self.mix.generate(&mut rng, now))
                .collect()
        };
        let expect: HashMap<Uuid, Expect> = generated.iter().map(|g| (g.id, g.expect)).collect();
        let events: Vec<Event> = generated.iter().filter_map(to_event).collect();
        let report = self.client.send_batch(events).await;
        self.tally.batches.fetch_add(1, Ordering::Relaxed);
        for id in &report.accepted {
            if let Some(expect) = expect.get(id) {
                self.ledger.record(*id, *expect);
            }
        }
        self.tally
            .accepted
            .fetch_add(report.accepted.len() as u64, Ordering::Relaxed);
        self.tally
            .undelivered
            .fetch_add(report.undelivered.len() as u64, Ordering::Relaxed);
        for failed in &report.undelivered {
            match failed.reason {
                Reason::Refused(_) => self.ledger.refused_at_edge(),
                _ => self.ledger.gave_up(),
            }
        }
    }
}

/// The mix's JSON body as the client's event, its id kept.
fn to_event(generated: &Generated) -> Option<Event> {
    let body = &generated.body;
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    let session: Uuid = text("session_id")?.parse().ok()?;
    let mut event = Event::new(session, text("category")?, text("name")?)
        .data(body.get("data").cloned().unwrap_or(Value::Null))
        .with_id(generated.id);
    event.timestamp = text("timestamp")?;
    Some(event)
}

/// The client's retries: none when `--retry-secs` is 0 (each batch sent once, like the
/// single events), else about that long.
fn retry_policy(retry_secs: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::try_from(retry_secs.saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(1),
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
    }
}

/// The batch scenario for `settings.batch_users` users, or None when there are none.
pub fn scenario(
    settings: &Settings,
    mix: EventMix,
    ledger: Arc<Ledger>,
    tally: Arc<BatchTally>,
) -> anyhow::Result<Option<Scenario>> {
    if settings.batch_users == 0 {
        return Ok(None);
    }
    let client = Client::builder(&settings.host, settings.token.expose().clone())
        .retry(retry_policy(settings.retry_secs))
        .max_batch_events(settings.batch_size as usize)
        .build()?;
    let sender = Arc::new(Sender {
        client,
        mix,
        size: settings.batch_size as usize,
        ledger,
        tally,
    });
    let send: TransactionFunction = Arc::new(move |_user| {
        let sender = Arc::clone(&sender);
        Box::pin(async move {
            sender.send_one_batch().await;
            Ok(())
        })
    });
    let every = Duration::from_millis(settings.batch_every_ms);
    let scenario = Scenario::new("post batches")
        .set_weight(settings.batch_users as usize)?
        .set_wait_time(every, every)?
        .register_transaction(Transaction::new(send).set_name("batch"));
    Ok(Some(scenario))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn every_generated_event_converts_with_its_id() {
        let mix = EventMix::new(10, 0.2, 0.2);
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let generated = mix.generate(&mut rng, Utc::now());
            let event = to_event(&generated).expect("converts");
            assert_eq!(event.id, Some(generated.id));
            let wire = serde_json::to_value(&event).expect("json");
            for key in ["session_id", "category", "name", "timestamp", "data"] {
                assert_eq!(wire[key], generated.body[key], "{key}");
            }
        }
    }

    #[test]
    fn no_retry_secs_is_one_attempt() {
        assert_eq!(retry_policy(0).max_attempts, 1);
        assert_eq!(retry_policy(30).max_attempts, 60);
    }
}
