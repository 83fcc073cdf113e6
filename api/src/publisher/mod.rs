//! Publishing accepted events with group commit.
//!
//! Each request serializes its envelope and hands it to one batcher task. The batcher takes
//! everything waiting (up to a count and a size), publishes it as one persistent message and,
//! once the broker confirms that message, answers every request in it. A bounded number of
//! messages are in flight at once; while they are, new requests queue up and form the next
//! message. So at low rates a message holds one event and adds no delay, and under load
//! messages grow by themselves: the broker's per-message cost is paid once per batch instead
//! of once per event.
//!
//! While one message is in flight, a further one is held until that message is confirmed,
//! enough events wait (`spill_events`) or the first has waited `spill_after`: at moderate
//! rates one message at a time then carries everything, and the broker does less work for
//! the same events; under load the other slots still open at once.
//!
//! An event whose request gave up (timed out or went away) before the batcher took it is
//! dropped unpublished (see `waiting`), and the waiting queue is bounded in events and bytes.

mod waiting;

use std::sync::Arc;
use std::time::{Duration, Instant};

use eye_core::settings::AmqpSettings;
use eye_core::{Envelope, Message};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::settings::PublishSettings;
use eye_core::link::LinkSlot;
use waiting::{ByteBudget, Fate, Pending};

pub use eye_core::link::PublishError;

/// Publishes envelopes with confirms, batching concurrent ones into one message.
#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Pending>,
    /// Bytes of the envelopes in `queue`.
    queued_bytes: Arc<ByteBudget>,
    link: Arc<LinkSlot>,
    timeout: Duration,
}

impl Publisher {
    /// Starts the broker link (connecting in the background: the api serves, answering 503
    /// for events, while the broker is unreachable) and the batcher.
    pub fn start(amqp: AmqpSettings, settings: &PublishSettings) -> Self {
        let link = LinkSlot::start(amqp, settings.channels, "eye-api");
        let (queue, waiting) = mpsc::channel(settings.queue_capacity);
        let queued_bytes = Arc::new(ByteBudget::new(settings.queue_bytes));
        let batcher = Batcher::new(link.clone(), queued_bytes.clone(), settings);
        tokio::spawn(batcher.run(waiting));
        Self {
            queue,
            queued_bytes,
            link,
            timeout: settings.timeout(),
        }
    }

    /// Whether the broker link is up and not blocked.
    pub fn is_ready(&self) -> bool {
        self.link.is_up()
    }

    /// Messages waiting in the ingest and poison queues, if the broker answers.
    pub async fn queue_depths(&self) -> Option<(u32, u32)> {
        self.link.queue_depths().await
    }

    /// Publishes one envelope; Ok only once the broker confirmed the message holding it.
    /// Past the publish timeout, an event not yet taken into a message never will be
    /// ([`PublishError::NotPublished`]); one already taken may be stored
    /// ([`PublishError::Timeout`]).
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        if !self.link.is_up() {
            return Err(PublishError::NotConnected);
        }
        let envelope = envelope.to_json();
        let bytes = envelope.len();
        if !self.queued_bytes.reserve(bytes) {
            return Err(PublishError::Overloaded);
        }
        let (done, confirmed) = oneshot::channel();
        let fate = Fate::default();
        if let Err(e) = self
            .queue
            .try_send(Pending::new(envelope, done, fate.clone()))
        {
            self.queued_bytes.release(bytes);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => PublishError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => PublishError::Closed,
            });
        }
        let given_up = match tokio::time::timeout(self.timeout, confirmed).await {
            Ok(Ok(result)) => return result,
            Err(_elapsed) => PublishError::NotPublished(self.timeout),
            Ok(Err(_dropped)) => PublishError::Closed,
        };
        if fate.give_up() {
            // The batcher has not taken it and now never will.
            Err(given_up)
        } else {
            // Taken into a message whose confirm did not come (in time): it may be stored.
            Err(PublishError::Timeout(self.timeout))
        }
    }

    /// Publishes several envelopes (a batch) through the same queue, each as [`Self::publish`]
    /// does: they join the messages being formed, in order. One result per envelope.
    pub async fn publish_all(&self, envelopes: &[&Envelope]) -> Vec<Result<(), PublishError>> {
        futures::future::join_all(envelopes.iter().map(|e| self.publish(e))).await
    }

    /// Closes the broker link. Call after the HTTP server drained.
    pub async fn close(&self) {
        self.link.close().await;
    }
}

/// Forms messages from waiting events and publishes them.
struct Batcher {
    link: Arc<LinkSlot>,
    queued_bytes: Arc<ByteBudget>,
    max_events: usize,
    max_bytes: usize,
    /// Messages that may await their confirm at once: `in_flight`'s permits.
    slots: usize,
    in_flight: Arc<Semaphore>,
    /// Signalled whenever a message's confirm (or failure) came back.
    confirmed: Arc<Notify>,
    spill_events: usize,
    spill_after: Duration,
    timeout: Duration,
}

impl Batcher {
    fn new(link: Arc<LinkSlot>, queued_bytes: Arc<ByteBudget>, settings: &PublishSettings) -> Self {
        Self {
            link,
            queued_bytes,
            max_events: usize::from(settings.max_batch_events),
            max_bytes: settings.max_batch_bytes as usize,
            slots: usize::from(settings.in_flight),
            in_flight: Arc::new(Semaphore::new(usize::from(settings.in_flight))),
            confirmed: Arc::new(Notify::new()),
            spill_events: usize::from(settings.spill_events),
            spill_after: Duration::from_micros(settings.spill_after_us),
            timeout: settings.timeout(),
        }
    }

    async fn run(self, mut waiting: mpsc::Receiver<Pending>) {
        loop {
            // Wait for a free slot first: while all are busy, events accumulate and the next
            // message carries all of them.
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                return;
            };
            let first = loop {
                let Some(next) = waiting.recv().await else {
                    return;
                };
                if next.take() {
                    break next;
                }
                self.drop_unpublished(&next);
            };
            let mut bytes = first.envelope.len();
            let mut batch = vec![first];
            let held_until = tokio::time::Instant::now() + self.spill_after;
            loop {
                while batch.len() < self.max_events && bytes < self.max_bytes {
                    match waiting.try_recv() {
                        Ok(next) => self.gather(next, &mut batch, &mut bytes),
                        Err(_) => break,
                    }
                }
                let full = batch.len() >= self.max_events || bytes >= self.max_bytes;
                // The batcher holds one permit; any other missing one is a message in flight.
                let others_in_flight = self.in_flight.available_permits() + 1 < self.slots;
                if full || !others_in_flight || batch.len() >= self.spill_events {
                    break;
                }
                // Another message is in flight and few events wait: let them gather until it
                // is confirmed, enough of them wait to be worth a message of their own, or
                // the first has waited `spill_after` (a slow confirm holds nobody long).
                tokio::select! {
                    () = tokio::time::sleep_until(held_until) => break,
                    next = waiting.recv() => match next {
                        Some(next) => self.gather(next, &mut batch, &mut bytes),
                        None => break,
                    },
                    () = self.confirmed.notified() => {}
                }
            }
            // The batch left the waiting queue: its bytes go back at once, not per event.
            self.queued_bytes.release(bytes);
            let link = self.link.clone();
            let timeout = self.timeout;
            let confirmed = self.confirmed.clone();
            tokio::spawn(async move {
                let body = Message::encode_serialized(batch.iter().map(|p| p.envelope.as_slice()));
                let started = Instant::now();
                let result = link.publish(&body, timeout).await;
                metrics::histogram!("eye_publish_confirm_seconds").record(started.elapsed());
                metrics::histogram!("eye_publish_batch_events").record(batch.len() as f64);
                for pending in batch {
                    // A request that timed out meanwhile answered "may be stored" itself.
                    let _ = pending.done.send(result.clone());
                }
                drop(permit);
                confirmed.notify_one();
            });
        }
    }

    /// Adds `next` to the batch if its request still waits, or drops it unpublished.
    fn gather(&self, next: Pending, batch: &mut Vec<Pending>, bytes: &mut usize) {
        if next.take() {
            *bytes += next.envelope.len();
            batch.push(next);
        } else {
            self.drop_unpublished(&next);
        }
    }

    /// An event whose request gave up leaves the queue unpublished (its bytes at once: the
    /// batcher may wait for the next event long).
    fn drop_unpublished(&self, pending: &Pending) {
        self.queued_bytes.release(pending.envelope.len());
        metrics::counter!("eye_publish_given_up_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use eye_core::Secret;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        publish: PublishSettings,
    }

    /// Without a broker every message fails at once (not connected), which is enough to see
    /// who was in it: a request in a message hears the failure, a skipped one only sees its
    /// sender dropped.
    #[tokio::test]
    async fn the_batcher_never_publishes_an_event_whose_request_gave_up() {
        let nowhere = AmqpSettings {
            url: Secret::new("amqp://guest:guest@127.0.0.1:1/%2f".into()),
            namespace: "unit".into(),
            connect_timeout_secs: 1,
            quorum_size: None,
        };
        let link = LinkSlot::start(nowhere, 1, "unit");
        let queued_bytes = Arc::new(ByteBudget::new(1000));
        let settings = Flags::parse_from(["unit"]).publish;
        let batcher = Batcher::new(link.clone(), queued_bytes.clone(), &settings);
        let (queue, waiting) = mpsc::channel(8);
        let mut answers = Vec::new();
        let mut fates = Vec::new();
        for _ in 0..4 {
            let (done, confirmed) = oneshot::channel();
            let fate = Fate::default();
            assert!(queued_bytes.reserve(100));
            let sent = queue.try_send(Pending::new(vec![b'{'; 100], done, fate.clone()));
            assert!(sent.is_ok());
            answers.push(confirmed);
            fates.push(fate);
        }
        // Request 1 timed out, request 2 went away, both before the batcher ran.
        assert!(fates[1].give_up());
        drop(answers.remove(2));
        tokio::spawn(batcher.run(waiting));
        let mut heard = Vec::new();
        for answer in answers {
            heard.push(match answer.await {
                Ok(Err(PublishError::NotConnected)) => "in a message",
                Err(_dropped) => "dropped unpublished",
                Ok(other) => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(
            heard,
            ["in a message", "dropped unpublished", "in a message"]
        );
        assert!(queued_bytes.reserve(1000), "every byte went back");
        link.stop();
    }
}
