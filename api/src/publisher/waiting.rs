//! What waits between a request and the batcher: the serialized event, the race between the
//! batcher taking it and its request giving up, and the byte budget of the waiting queue.
//!
//! A request that gave up (its publish timeout passed, or its client went away) must never
//! see its event published later: a 503 would then be stored, and a client retrying without
//! an `id` would store it twice. So each event is either taken into a message while its
//! request still waits, or never published; one atomic decides which came first, and tells
//! the request what to answer: "not published, safe to retry" or "may have been stored:
//! retry with the same id".

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use tokio::sync::oneshot;

use super::PublishError;

const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const GAVE_UP: u8 = 2;

/// Which came first for one event: the batcher taking it, or its request giving up.
#[derive(Clone, Default)]
pub(super) struct Fate(Arc<AtomicU8>);

impl Fate {
    fn settle(&self, to: u8) -> bool {
        self.0
            .compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The request gives up; false if its event was already taken into a message, which
    /// may then be stored.
    pub(super) fn give_up(&self) -> bool {
        self.settle(GAVE_UP)
    }
}

/// An event waiting for a message, then for that message's confirm.
pub(super) struct Pending {
    pub(super) envelope: Vec<u8>,
    pub(super) done: oneshot::Sender<Result<(), PublishError>>,
    fate: Fate,
}

impl Pending {
    pub(super) fn new(
        envelope: Vec<u8>,
        done: oneshot::Sender<Result<(), PublishError>>,
        fate: Fate,
    ) -> Self {
        Self {
            envelope,
            done,
            fate,
        }
    }

    /// Takes the event into the message being formed: false, and the event must be dropped
    /// unpublished, if its request timed out or was dropped (its client went away).
    pub(super) fn take(&self) -> bool {
        !self.done.is_closed() && self.fate.settle(TAKEN)
    }
}

/// Bytes of the envelopes in the waiting queue, bounded: a bound on the count alone lets
/// 16k events of 64 KiB hold a gigabyte while the broker is slow.
pub(super) struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Reserves `bytes` for one event; false (nothing reserved) if the queue would exceed
    /// the budget. One `fetch_add` instead of a compare-and-swap loop: two requests racing
    /// for the last bytes may both be refused, which is harmless.
    pub(super) fn reserve(&self, bytes: usize) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Gives back the bytes of events that left the queue (the batcher does it once per
    /// message, not per event).
    pub(super) fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> (Pending, oneshot::Receiver<Result<(), PublishError>>, Fate) {
        let (done, confirmed) = oneshot::channel();
        let fate = Fate::default();
        (
            Pending::new(vec![0; 10], done, fate.clone()),
            confirmed,
            fate,
        )
    }

    #[test]
    fn an_event_whose_request_gave_up_is_never_taken() {
        let (event, _confirmed, fate) = pending();
        assert!(fate.give_up(), "nothing took it yet: not published");
        assert!(!event.take());
    }

    #[test]
    fn an_event_whose_request_went_away_is_never_taken() {
        let (event, confirmed, _fate) = pending();
        drop(confirmed);
        assert!(!event.take());
    }

    #[test]
    fn a_request_cannot_give_up_an_event_already_taken() {
        let (event, _confirmed, fate) = pending();
        assert!(event.take());
        assert!(!fate.give_up(), "taken: its message may be stored");
    }

    #[test]
    fn the_byte_budget_refuses_past_its_limit_and_frees_what_is_released() {
        let budget = ByteBudget::new(100);
        assert!(budget.reserve(60));
        assert!(budget.reserve(40));
        assert!(!budget.reserve(1), "full");
        budget.release(40);
        assert!(
            !budget.reserve(41),
            "a refusal reserved nothing, 40 are free"
        );
        assert!(budget.reserve(40));
    }
}
