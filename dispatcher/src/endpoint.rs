//! One endpoint's loop: claims its due deliveries, at most `concurrency` in flight (one in
//! FIFO mode) and up to one more round claimed ahead, so a slot that frees starts the next
//! attempt without a round trip to the database; sends each, and hands the attempt to the
//! recorder. Each endpoint has its own task, so a slow or failing endpoint only ever delays
//! itself.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::outbox::{self, Claimed, EventRow, Subscription};
use crate::payload;
use crate::recorder::{Next, Record, Recorder};
use crate::sender::{Message, Sender};

/// What every endpoint task shares.
#[derive(Debug)]
pub struct Shared {
    pub db: DatabaseConnection,
    pub sender: Sender,
    pub recorder: Recorder,
    pub schedule: Vec<Duration>,
    pub jitter: f64,
    pub concurrency: u32,
    pub poll: Duration,
    pub lease: Duration,
}

/// A claimed delivery and its event (None: erased since, or a notification).
type Ready = (Claimed, Option<EventRow>);

/// Runs the endpoint whose latest settings `subscription` holds, until `stop`; attempts in
/// flight then finish (bounded by the send timeout) and claims not started are given back.
///
/// Claims run beside the attempts (a task of their own), so a slot that frees while a claim
/// is on its way to the database is filled at once from the deliveries claimed ahead.
pub async fn run(
    shared: Arc<Shared>,
    subscription: watch::Receiver<Subscription>,
    stop: CancellationToken,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut ready: VecDeque<Ready> = VecDeque::new();
    let mut claiming: Option<JoinHandle<Claim>> = None;
    let mut next_claim = Instant::now();
    let mut id = subscription.borrow().id;
    while !stop.is_cancelled() {
        let sub = subscription.borrow().clone();
        id = sub.id;
        let limit = if sub.fifo {
            1
        } else {
            shared.concurrency as usize
        };
        while in_flight.len() < limit
            && let Some((delivery, event)) = ready.pop_front()
        {
            let (shared, sub) = (Arc::clone(&shared), sub.clone());
            in_flight.spawn(async move { attempt(&shared, &sub, delivery, event).await });
        }
        // FIFO: the head only, once the previous one is done. Otherwise: once at most half
        // a round is waiting, claim up to one round beyond the attempts in flight.
        let want = if claiming.is_some() {
            0
        } else if sub.fifo {
            usize::from(in_flight.is_empty() && ready.is_empty())
        } else if ready.len() <= limit / 2 {
            (2 * limit).saturating_sub(in_flight.len() + ready.len())
        } else {
            0
        };
        if want > 0 && Instant::now() >= next_claim {
            let (shared, sub) = (Arc::clone(&shared), sub.clone());
            claiming = Some(tokio::spawn(
                async move { claim(&shared, &sub, want).await },
            ));
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            claim = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                claiming = None;
                // More may be due when the claim was full; otherwise look again after a poll.
                let Claim { ready: claimed, full } = claim.unwrap_or_default();
                next_claim = if full { Instant::now() } else { Instant::now() + shared.poll };
                ready.extend(claimed);
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tokio::time::sleep_until(next_claim), if want > 0 => {}
        }
    }
    if let Some(pending) = claiming
        && let Ok(claim) = pending.await
    {
        ready.extend(claim.ready);
    }
    let unstarted: Vec<uuid::Uuid> = ready.iter().map(|(d, _)| d.event_id).collect();
    if let Err(e) = outbox::release(&shared.db, id, unstarted).await {
        tracing::warn!(error = %e, "cannot give back unstarted claims; they are due when their leases end");
    }
    while in_flight.join_next().await.is_some() {}
}

/// What one claim brought: the deliveries with their events, and whether it was full.
#[derive(Default)]
struct Claim {
    ready: Vec<Ready>,
    full: bool,
}

async fn claim(shared: &Shared, sub: &Subscription, want: usize) -> Claim {
    let limit = u32::try_from(want).unwrap_or(u32::MAX);
    match outbox::claim(&shared.db, sub.id, limit, sub.fifo, shared.lease).await {
        Ok(claimed) => Claim {
            full: !sub.fifo && claimed.len() == want,
            ready: with_events(shared, sub, claimed).await,
        },
        Err(e) => {
            tracing::warn!(error = %e, subscription = %sub.id, "cannot claim deliveries");
            Claim::default()
        }
    }
}

/// Reads the claimed deliveries' events (one query for the lot). On failure the claims are
/// dropped: their leases run out and they are taken again.
async fn with_events(shared: &Shared, sub: &Subscription, claimed: Vec<Claimed>) -> Vec<Ready> {
    if claimed.is_empty() {
        return Vec::new();
    }
    let ids = claimed
        .iter()
        .filter(|c| c.kind == eye_core::webhook::KIND_STORED)
        .map(|c| c.event_id)
        .collect();
    let events = match outbox::events(&shared.db, &sub.app_id, ids).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the claimed events");
            return Vec::new();
        }
    };
    let mut by_id: HashMap<uuid::Uuid, EventRow> = events.into_iter().map(|e| (e.id, e)).collect();
    claimed
        .into_iter()
        .map(|delivery| {
            let event = by_id.remove(&delivery.event_id);
            (delivery, event)
        })
        .collect()
}

async fn attempt(shared: &Shared, sub: &Subscription, delivery: Claimed, event: Option<EventRow>) {
    if delivery.attempts == 0 {
        let lag = (Utc::now() - delivery.created_at)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!("eye_webhook_stored_to_first_attempt_seconds").record(lag);
    }
    let webhook_id = eye_core::webhook::webhook_id(sub.id, delivery.event_id);
    let started_at = Utc::now();
    let record = |status_code, latency: Duration, response, error, gone, next: &Next| {
        let (outcome, next_attempt_at) = next.state();
        Record {
            subscription_id: sub.id,
            event_id: Some(delivery.event_id),
            webhook_id: webhook_id.clone(),
            trigger: "delivery",
            started_at,
            status_code,
            latency_ms: i32::try_from(latency.as_millis()).unwrap_or(i32::MAX),
            response,
            error,
            gone,
            outcome,
            next_attempt_at,
        }
    };
    let body = match (&delivery.payload, &event) {
        (_, Some(event)) => payload::stored(event),
        (Some(data), None) => payload::notification(&delivery.kind, delivery.created_at, data),
        (None, None) => {
            // Erased between its commit and its delivery: nothing to send, ever.
            let error = "the event was erased before its delivery".to_owned();
            let skipped = record(
                None,
                Duration::ZERO,
                None,
                Some(error),
                false,
                &Next::Skipped,
            );
            shared.recorder.record(skipped).await;
            return;
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "unreadable stored JSON");
            return;
        }
    };
    let secrets = sub.secrets();
    let outcome = shared
        .sender
        .send(&Message {
            url: &sub.url,
            webhook_id: &webhook_id,
            body: &body,
            secrets: &secrets,
        })
        .await;
    let done = usize::try_from(delivery.attempts).unwrap_or(0) + 1;
    let next = if outcome.succeeded() {
        Next::Succeeded
    } else if outcome.gone() {
        Next::Failed
    } else {
        match crate::schedule::next_delay(
            &shared.schedule,
            done,
            shared.jitter,
            outcome.retry_after,
        ) {
            Some(delay) => Next::Retry(Utc::now() + delay),
            None => Next::Failed,
        }
    };
    let result = match next {
        Next::Succeeded => "succeeded",
        Next::Retry(_) => "retry",
        _ => "failed",
    };
    metrics::counter!("eye_webhook_attempts_total", "result" => result).increment(1);
    metrics::histogram!("eye_webhook_attempt_seconds").record(outcome.latency);
    let error = outcome.error.clone().or_else(|| {
        outcome
            .status
            .map(|s| format!("status {s}"))
            .filter(|_| !outcome.succeeded())
    });
    let gone = outcome.gone();
    let attempt = record(
        outcome.status.map(i32::from),
        outcome.latency,
        outcome.response,
        error.map(|e| e.replace('\0', "")),
        gone,
        &next,
    );
    if sub.fifo {
        // The next in line is claimed only once this one is no longer pending.
        shared.recorder.record(attempt).await;
    } else {
        // The lease keeps the delivery until the record is committed; the slot is free now.
        shared.recorder.submit(attempt).await;
    }
}
