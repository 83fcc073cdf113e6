//! One endpoint's loop: claims its due deliveries (at most `concurrency` in flight, one in
//! FIFO mode), sends each, records the attempt and what follows. Each endpoint has its own
//! task, so a slow or failing endpoint only ever delays itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::outbox::{self, Attempt, Claimed, EventRow, Next, Subscription};
use crate::payload;
use crate::sender::{Message, Sender};

/// What every endpoint task shares.
#[derive(Debug)]
pub struct Shared {
    pub db: DatabaseConnection,
    pub sender: Sender,
    pub schedule: Vec<Duration>,
    pub jitter: f64,
    pub concurrency: u32,
    pub disable_after: Duration,
    pub poll: Duration,
    pub lease: Duration,
}

/// Runs the endpoint whose latest settings `subscription` holds, until `stop`; attempts in
/// flight then finish (bounded by the send timeout).
pub async fn run(
    shared: Arc<Shared>,
    subscription: watch::Receiver<Subscription>,
    stop: CancellationToken,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    while !stop.is_cancelled() {
        let sub = subscription.borrow().clone();
        let limit = if sub.fifo { 1 } else { shared.concurrency };
        let free = limit.saturating_sub(u32::try_from(in_flight.len()).unwrap_or(u32::MAX));
        let mut claimed_any = false;
        if free > 0 {
            match outbox::claim(&shared.db, sub.id, free, sub.fifo, shared.lease).await {
                Ok(claimed) => {
                    claimed_any = !claimed.is_empty();
                    start(&shared, &sub, claimed, &mut in_flight).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, subscription = %sub.id, "cannot claim deliveries")
                }
            }
        }
        if claimed_any && in_flight.len() < limit as usize {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = tokio::time::sleep(shared.poll) => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Reads the claimed deliveries' events and starts one attempt each.
async fn start(
    shared: &Arc<Shared>,
    sub: &Subscription,
    claimed: Vec<Claimed>,
    in_flight: &mut JoinSet<()>,
) {
    if claimed.is_empty() {
        return;
    }
    let ids = claimed
        .iter()
        .filter(|c| c.kind == eye_core::webhook::KIND_STORED)
        .map(|c| c.event_id)
        .collect();
    let events = match outbox::events(&shared.db, &sub.app_id, ids).await {
        Ok(events) => events,
        // The claims' leases run out and the deliveries are taken again.
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the claimed events");
            return;
        }
    };
    let mut by_id: std::collections::HashMap<uuid::Uuid, EventRow> =
        events.into_iter().map(|e| (e.id, e)).collect();
    for delivery in claimed {
        let event = by_id.remove(&delivery.event_id);
        let (shared, sub) = (Arc::clone(shared), sub.clone());
        in_flight.spawn(async move { attempt(&shared, &sub, delivery, event).await });
    }
}

async fn attempt(shared: &Shared, sub: &Subscription, delivery: Claimed, event: Option<EventRow>) {
    if delivery.attempts == 0 {
        let lag = (Utc::now() - delivery.created_at)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!("eye_webhook_stored_to_first_attempt_seconds").record(lag);
    }
    let webhook_id = eye_core::webhook::webhook_id(sub.id, delivery.event_id);
    let body = match (&delivery.payload, &event) {
        (_, Some(event)) => payload::stored(event),
        (Some(data), None) => payload::notification(&delivery.kind, delivery.created_at, data),
        (None, None) => {
            // Erased between its commit and its delivery: nothing to send, ever.
            let skipped = Attempt {
                subscription: sub.id,
                event: Some(delivery.event_id),
                webhook_id: &webhook_id,
                trigger: "delivery",
                status: None,
                latency: Duration::ZERO,
                response: None,
                error: Some("the event was erased before its delivery"),
            };
            save(shared, &skipped, &Next::Skipped, false).await;
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
    let attempt = Attempt {
        subscription: sub.id,
        event: Some(delivery.event_id),
        webhook_id: &webhook_id,
        trigger: "delivery",
        status: outcome.status,
        latency: outcome.latency,
        response: outcome.response.as_deref(),
        error: error.as_deref(),
    };
    save(shared, &attempt, &next, outcome.gone()).await;
}

/// Records an attempt, retrying while the database is away (the lease keeps the delivery
/// meanwhile; if it runs out, the delivery is sent again with the same webhook-id).
async fn save(shared: &Shared, attempt: &Attempt<'_>, next: &Next, gone: bool) {
    for pause in [50u64, 200, 1000, 2000, 5000] {
        match outbox::record(&shared.db, attempt, next, gone, shared.disable_after).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record a webhook attempt; retrying");
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
}
