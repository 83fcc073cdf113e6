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

use std::sync::Arc;
use std::time::{Duration, Instant};

use eye_core::settings::AmqpSettings;
use eye_core::{Envelope, Message};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::settings::PublishSettings;
use eye_core::link::LinkSlot;

pub use eye_core::link::PublishError;

/// An event waiting for its message's confirm.
struct Pending {
    envelope: Vec<u8>,
    done: oneshot::Sender<Result<(), PublishError>>,
}

/// Publishes envelopes with confirms, batching concurrent ones into one message.
#[derive(Clone)]
pub struct Publisher {
    queue: mpsc::Sender<Pending>,
    link: Arc<LinkSlot>,
    timeout: Duration,
}

impl Publisher {
    /// Starts the broker link (connecting in the background: the api serves, answering 503
    /// for events, while the broker is unreachable) and the batcher.
    pub fn start(amqp: AmqpSettings, settings: &PublishSettings) -> Self {
        let link = LinkSlot::start(amqp, settings.channels, "eye-api");
        let (queue, waiting) = mpsc::channel(settings.queue_capacity);
        let batcher = Batcher {
            link: link.clone(),
            max_events: usize::from(settings.max_batch_events),
            max_bytes: settings.max_batch_bytes as usize,
            slots: usize::from(settings.in_flight),
            in_flight: Arc::new(Semaphore::new(usize::from(settings.in_flight))),
            confirmed: Arc::new(Notify::new()),
            spill_events: usize::from(settings.spill_events),
            spill_after: Duration::from_micros(settings.spill_after_us),
            timeout: settings.timeout(),
        };
        tokio::spawn(batcher.run(waiting));
        Self {
            queue,
            link,
            timeout: settings.timeout(),
        }
    }

    /// Whether the broker link is up and not blocked.
    pub fn is_ready(&self) -> bool {
        self.link.is_up()
    }

    /// Publishes one envelope; Ok only once the broker confirmed the message holding it.
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        if !self.link.is_up() {
            return Err(PublishError::NotConnected);
        }
        let (done, confirmed) = oneshot::channel();
        self.queue
            .try_send(Pending {
                envelope: envelope.to_json(),
                done,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => PublishError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => PublishError::Closed,
            })?;
        match tokio::time::timeout(self.timeout, confirmed).await {
            Err(_) => Err(PublishError::Timeout(self.timeout)),
            Ok(Err(_dropped)) => Err(PublishError::Closed),
            Ok(Ok(result)) => result,
        }
    }

    /// Closes the broker link. Call after the HTTP server drained.
    pub async fn close(&self) {
        self.link.close().await;
    }
}

/// Forms messages from waiting events and publishes them.
struct Batcher {
    link: Arc<LinkSlot>,
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
    async fn run(self, mut waiting: mpsc::Receiver<Pending>) {
        loop {
            // Wait for a free slot first: while all are busy, events accumulate and the next
            // message carries all of them.
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut bytes = first.envelope.len();
            let mut batch = vec![first];
            let held_until = tokio::time::Instant::now() + self.spill_after;
            loop {
                while batch.len() < self.max_events && bytes < self.max_bytes {
                    match waiting.try_recv() {
                        Ok(next) => {
                            bytes += next.envelope.len();
                            batch.push(next);
                        }
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
                        Some(next) => {
                            bytes += next.envelope.len();
                            batch.push(next);
                        }
                        None => break,
                    },
                    () = self.confirmed.notified() => {}
                }
            }
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
                    // A request that gave up (timeout) no longer listens; nothing to do.
                    let _ = pending.done.send(result.clone());
                }
                drop(permit);
                confirmed.notify_one();
            });
        }
    }
}
