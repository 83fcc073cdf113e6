//! The ack bookkeeping of one channel, apart from the broker so it can be tested alone.
//!
//! Batches commit concurrently but are settled strictly in delivery order, each with one
//! `multiple` ack of its last delivery tag. Such an ack also covers every earlier delivery,
//! so once a batch could not be committed, nothing after it may be acked on this channel:
//! the channel is closed instead, and the broker redelivers everything unacked (the store is
//! idempotent, so batches that did commit after it are written only once).

use std::collections::VecDeque;

/// Batches in delivery order, each with the tag that acks it.
#[derive(Debug)]
pub struct Acks<C> {
    in_flight: VecDeque<(C, u64)>,
    broken: bool,
}

impl<C> Default for Acks<C> {
    fn default() -> Self {
        Self {
            in_flight: VecDeque::new(),
            broken: false,
        }
    }
}

impl<C> Acks<C> {
    /// A batch handed to its commit; `last_tag` is its last delivery.
    pub fn push(&mut self, commit: C, last_tag: u64) {
        self.in_flight.push_back((commit, last_tag));
    }

    /// The oldest batch's commit, to wait on.
    pub fn oldest(&mut self) -> Option<&mut C> {
        self.in_flight.front_mut().map(|(commit, _)| commit)
    }

    /// Settles the oldest batch: the tag to ack (`multiple`), or `None` when it, or any
    /// batch before it, was not committed.
    pub fn settle(&mut self, committed: bool) -> Option<u64> {
        let (_, tag) = self.in_flight.pop_front()?;
        self.broken |= !committed;
        (!self.broken).then_some(tag)
    }

    /// Whether a batch failed: stop consuming, ack nothing more, close the channel.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_acked_in_order_by_their_last_tag() {
        let mut acks = Acks::default();
        acks.push((), 3);
        acks.push((), 7);
        assert_eq!(acks.settle(true), Some(3));
        assert_eq!(acks.settle(true), Some(7));
        assert_eq!(acks.settle(true), None, "nothing left");
        assert!(!acks.is_broken());
    }

    #[test]
    fn nothing_after_an_uncommitted_batch_is_ever_acked() {
        // The shutdown path of old: batch 1 gave up, batch 2 committed, and its multiple ack
        // of tag 7 also acked batch 1's deliveries, which were never stored.
        let mut acks = Acks::default();
        acks.push((), 3);
        acks.push((), 7);
        acks.push((), 9);
        assert_eq!(acks.settle(false), None);
        assert!(acks.is_broken());
        assert_eq!(acks.settle(true), None);
        acks.push((), 12);
        assert_eq!(acks.settle(true), None);
        assert_eq!(acks.settle(true), None);
    }
}
