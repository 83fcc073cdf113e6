//! Background batching: events are queued at once (their ids assigned then) and sent in
//! batches of up to `max_events`, or whatever waited `linger` after the first; a few
//! batches are in flight at once. What could not be delivered is kept for the application
//! to read (`take_undelivered`, `close`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use crate::client::undelivered;
use crate::error::{Reason, Undelivered};
use crate::{Client, Event};

/// Bounds of a [`Batcher`].
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most events in one request.
    pub max_events: usize,
    /// Longest an event waits for others before its batch leaves.
    pub linger: Duration,
    /// Events that may wait in memory; past it [`Batcher::send`] refuses ([`Reason::Full`]).
    pub capacity: usize,
    /// Batches awaiting their answer at once.
    pub in_flight: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: 500,
            linger: Duration::from_millis(50),
            capacity: 100_000,
            in_flight: 2,
        }
    }
}

/// What a batcher did: events accepted by the api, and those it could not deliver.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub delivered: u64,
    pub undelivered: Vec<Undelivered>,
}

enum Command {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

/// Sends events in the background, in batches. Dropping it without [`Batcher::close`]
/// still sends what was queued, but nobody hears what failed.
pub struct Batcher {
    queue: mpsc::Sender<Command>,
    outcome: Arc<Mutex<Report>>,
    task: JoinHandle<()>,
}

impl Batcher {
    pub(crate) fn start(client: Client, config: BatchConfig) -> Self {
        let (queue, commands) = mpsc::channel(config.capacity.max(1));
        let outcome = Arc::new(Mutex::new(Report::default()));
        let task = tokio::spawn(run(client, config, commands, outcome.clone()));
        Self {
            queue,
            outcome,
            task,
        }
    }

    /// Queues an event and returns its id (assigned now if it had none), or refuses it at
    /// once when the buffer is full.
    pub fn send(&self, mut event: Event) -> Result<Uuid, Box<Undelivered>> {
        let id = event.assign_id();
        self.queue.try_send(Command::Event(event)).map_err(|e| {
            let event = match e.into_inner() {
                Command::Event(event) => event,
                Command::Flush(_) => unreachable_event(id),
            };
            Box::new(undelivered(&event, Reason::Full))
        })?;
        Ok(id)
    }

    /// Waits until every event queued before has been answered (accepted or undelivered).
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Command::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    /// Takes the events not delivered so far.
    pub fn take_undelivered(&self) -> Vec<Undelivered> {
        std::mem::take(&mut lock(&self.outcome).undelivered)
    }

    /// Events the api accepted so far.
    pub fn delivered(&self) -> u64 {
        lock(&self.outcome).delivered
    }

    /// Sends what is queued, waits for every answer, and reports.
    pub async fn close(self) -> Report {
        drop(self.queue);
        let _ = self.task.await;
        std::mem::take(&mut *lock(&self.outcome))
    }
}

fn lock(outcome: &Mutex<Report>) -> std::sync::MutexGuard<'_, Report> {
    outcome.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `send` only queues events: a flush coming back from `try_send` cannot happen.
fn unreachable_event(id: Uuid) -> Event {
    Event::new(Uuid::nil(), "", "").with_id(id)
}

async fn run(
    client: Client,
    config: BatchConfig,
    mut commands: mpsc::Receiver<Command>,
    outcome: Arc<Mutex<Report>>,
) {
    let mut buffer: Vec<Event> = Vec::new();
    let mut sending = JoinSet::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            () = tokio::time::sleep_until(deadline), if !buffer.is_empty() => {
                dispatch(&client, &config, &mut buffer, &mut sending, &outcome).await;
                continue;
            }
        };
        match command {
            None => break,
            Some(Command::Event(event)) => {
                if buffer.is_empty() {
                    deadline = tokio::time::Instant::now() + config.linger;
                }
                buffer.push(event);
                if buffer.len() >= config.max_events.max(1) {
                    dispatch(&client, &config, &mut buffer, &mut sending, &outcome).await;
                }
            }
            Some(Command::Flush(done)) => {
                dispatch(&client, &config, &mut buffer, &mut sending, &outcome).await;
                while sending.join_next().await.is_some() {}
                let _ = done.send(());
            }
        }
    }
    dispatch(&client, &config, &mut buffer, &mut sending, &outcome).await;
    while sending.join_next().await.is_some() {}
}

/// Sends the buffer as one batch once a flight slot is free.
async fn dispatch(
    client: &Client,
    config: &BatchConfig,
    buffer: &mut Vec<Event>,
    sending: &mut JoinSet<()>,
    outcome: &Arc<Mutex<Report>>,
) {
    if buffer.is_empty() {
        return;
    }
    while sending.len() >= config.in_flight.max(1) {
        sending.join_next().await;
    }
    let batch = std::mem::take(buffer);
    let client = client.clone();
    let outcome = outcome.clone();
    sending.spawn(async move {
        let report = client.send_batch(batch).await;
        let mut outcome = lock(&outcome);
        outcome.delivered += report.accepted.len() as u64;
        outcome.undelivered.extend(report.undelivered);
    });
}
