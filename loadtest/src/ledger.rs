//! The loss ledger: every event id the API answered 202, and the arithmetic that compares
//! them with the rows the worker wrote. A 202 is a promise that the event will be stored or
//! refused (an `invalid` dead letter) exactly once, under its own id; this is where the
//! promise is checked.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

use crate::payload::Expect;

/// The ids answered 202, shared by every goose user (held in an `Arc`), and a count of the
/// events that never got one.
#[derive(Debug, Default)]
pub struct Ledger {
    accepted: Mutex<Vec<(Uuid, Expect)>>,
    /// Final answers other than 202 (a 4xx: the edge refused the event).
    refused_at_edge: AtomicU64,
    /// Events still answered 503 or unanswered when their retry time ran out.
    gave_up: AtomicU64,
}

impl Ledger {
    pub fn record(&self, id: Uuid, expect: Expect) {
        // A user that panicked mid-push cannot leave a half-written Vec entry behind, so a
        // poisoned lock still holds a sound list.
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, expect));
    }

    pub fn refused_at_edge(&self) {
        self.refused_at_edge.fetch_add(1, Ordering::Relaxed);
    }

    pub fn gave_up(&self) {
        self.gave_up.fetch_add(1, Ordering::Relaxed);
    }

    /// The events that got no 202: (refused at the edge, given up on).
    pub fn not_accepted(&self) -> (u64, u64) {
        (
            self.refused_at_edge.load(Ordering::Relaxed),
            self.gave_up.load(Ordering::Relaxed),
        )
    }

    /// Every accepted id with where it should end up, in the order the 202s came.
    pub fn accepted(&self) -> Vec<(Uuid, Expect)> {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Rows found per event id: in `events`, in `dead_letters` as `invalid`, and inside
/// messages the worker dead-lettered as `undecodable`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    pub stored: HashMap<Uuid, u64>,
    pub refused: HashMap<Uuid, u64>,
    pub undecodable: HashSet<Uuid>,
}

impl Found {
    /// Adds the rows of another chunk of ids.
    pub fn merge(&mut self, other: Found) {
        for (id, n) in other.stored {
            *self.stored.entry(id).or_default() += n;
        }
        for (id, n) in other.refused {
            *self.refused.entry(id).or_default() += n;
        }
        self.undecodable.extend(other.undecodable);
    }
}

/// The verdict on the accepted ids, each counted once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub accepted: u64,
    /// Accepted ids with a row in `events`.
    pub stored: u64,
    /// Accepted ids with an `invalid` row in `dead_letters`: refused under their own id.
    pub refused: u64,
    /// Accepted ids with no row anywhere.
    pub lost: u64,
    /// Accepted ids with more than one row: twice in a table, or in both tables.
    pub duplicated: u64,
    /// Accepted ids neither stored nor refused, found only inside a message the worker
    /// could not decode: not lost from the database, but lost to their application.
    pub undecodable: u64,
    /// Accepted ids that ended up in the other table than the load test meant (a valid
    /// event dead-lettered, or a spoiled one stored): a validation surprise, not a loss.
    pub misjudged: u64,
}

impl Tally {
    /// Compares the accepted ids with the rows found. An id accepted twice (a client id
    /// collision, which v7 makes practically impossible) counts once.
    pub fn count(accepted: &[(Uuid, Expect)], found: &Found) -> Self {
        let mut seen = HashSet::with_capacity(accepted.len());
        let mut tally = Tally::default();
        for &(id, expect) in accepted {
            if !seen.insert(id) {
                continue;
            }
            let stored = found.stored.get(&id).copied().unwrap_or(0);
            let refused = found.refused.get(&id).copied().unwrap_or(0);
            let nowhere = stored + refused == 0;
            let undecodable = nowhere && found.undecodable.contains(&id);
            tally.accepted += 1;
            tally.stored += u64::from(stored > 0);
            tally.refused += u64::from(refused > 0);
            tally.undecodable += u64::from(undecodable);
            tally.lost += u64::from(nowhere && !undecodable);
            tally.duplicated += u64::from(stored + refused > 1);
            let landed = match (stored > 0, refused > 0) {
                (true, false) => Some(Expect::Stored),
                (false, true) => Some(Expect::Refused),
                _ => None,
            };
            tally.misjudged += u64::from(landed.is_some_and(|l| l != expect));
        }
        tally
    }

    /// Every accepted id has landed somewhere it will not move from.
    pub fn all_accounted(&self) -> bool {
        self.lost == 0
    }

    /// The run kept the promise: something was accepted, and every accepted id was stored
    /// or refused on its own, once.
    pub fn passed(&self) -> bool {
        self.accepted > 0 && self.lost == 0 && self.duplicated == 0 && self.undecodable == 0
    }
}

/// The one line scripts grep for.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted={} stored={} refused={} lost={} duplicated={} undecodable={}",
            self.accepted, self.stored, self.refused, self.lost, self.duplicated, self.undecodable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    fn found(stored: &[(Uuid, u64)], refused: &[(Uuid, u64)]) -> Found {
        Found {
            stored: stored.iter().copied().collect(),
            refused: refused.iter().copied().collect(),
            undecodable: HashSet::new(),
        }
    }

    #[test]
    fn every_id_in_its_table_passes() {
        let [a, b, c] = ids(3)[..] else {
            unreachable!()
        };
        let accepted = [
            (a, Expect::Stored),
            (b, Expect::Stored),
            (c, Expect::Refused),
        ];
        let tally = Tally::count(&accepted, &found(&[(a, 1), (b, 1)], &[(c, 1)]));
        assert_eq!(
            tally.to_string(),
            "accepted=3 stored=2 refused=1 lost=0 duplicated=0 undecodable=0"
        );
        assert_eq!(tally.misjudged, 0);
        assert!(tally.passed() && tally.all_accounted());
    }

    #[test]
    fn an_id_found_nowhere_is_lost() {
        let [a, b] = ids(2)[..] else { unreachable!() };
        let tally = Tally::count(
            &[(a, Expect::Stored), (b, Expect::Stored)],
            &found(&[(a, 1)], &[]),
        );
        assert_eq!((tally.lost, tally.stored), (1, 1));
        assert!(!tally.passed() && !tally.all_accounted());
    }

    #[test]
    fn an_id_in_both_tables_or_twice_in_one_is_duplicated() {
        let [a, b, c] = ids(3)[..] else {
            unreachable!()
        };
        let accepted = [
            (a, Expect::Stored),
            (b, Expect::Stored),
            (c, Expect::Refused),
        ];
        let tally = Tally::count(&accepted, &found(&[(a, 1), (b, 2)], &[(a, 1), (c, 1)]));
        assert_eq!(
            (tally.stored, tally.refused, tally.duplicated, tally.lost),
            (2, 2, 2, 0)
        );
        assert!(!tally.passed());
    }

    #[test]
    fn rows_of_ids_never_accepted_are_not_counted() {
        let [a, stranger] = ids(2)[..] else {
            unreachable!()
        };
        let tally = Tally::count(
            &[(a, Expect::Stored)],
            &found(&[(a, 1), (stranger, 1)], &[(stranger, 1)]),
        );
        assert_eq!(
            tally.to_string(),
            "accepted=1 stored=1 refused=0 lost=0 duplicated=0 undecodable=0"
        );
    }

    #[test]
    fn an_id_accepted_twice_counts_once() {
        let [a] = ids(1)[..] else { unreachable!() };
        let tally = Tally::count(
            &[(a, Expect::Stored), (a, Expect::Stored)],
            &found(&[(a, 1)], &[]),
        );
        assert_eq!((tally.accepted, tally.stored, tally.duplicated), (1, 1, 0));
    }

    #[test]
    fn an_id_only_inside_an_undecodable_message_fails_but_is_not_lost() {
        let [a, b, c] = ids(3)[..] else {
            unreachable!()
        };
        let mut rows = found(&[(a, 1)], &[(c, 1)]);
        // An id that was also stored or refused is accounted for there, not as undecodable.
        rows.undecodable.extend([b, c]);
        let tally = Tally::count(
            &[
                (a, Expect::Stored),
                (b, Expect::Stored),
                (c, Expect::Refused),
            ],
            &rows,
        );
        assert_eq!(
            tally.to_string(),
            "accepted=3 stored=1 refused=1 lost=0 duplicated=0 undecodable=1"
        );
        assert!(tally.all_accounted() && !tally.passed());
    }

    #[test]
    fn nothing_accepted_fails() {
        let tally = Tally::count(&[], &Found::default());
        assert!(tally.all_accounted() && !tally.passed());
    }

    #[test]
    fn an_event_in_the_unexpected_table_is_misjudged_not_lost() {
        let [a, b] = ids(2)[..] else { unreachable!() };
        let accepted = [(a, Expect::Stored), (b, Expect::Refused)];
        let tally = Tally::count(&accepted, &found(&[(b, 1)], &[(a, 1)]));
        assert_eq!((tally.misjudged, tally.lost), (2, 0));
        assert!(tally.passed());
    }

    #[test]
    fn chunks_merge_by_adding_rows() {
        let [a, b] = ids(2)[..] else { unreachable!() };
        let mut all = found(&[(a, 1)], &[]);
        let mut more = found(&[(a, 1), (b, 1)], &[(b, 1)]);
        more.undecodable.insert(a);
        all.merge(more);
        let mut expected = found(&[(a, 2), (b, 1)], &[(b, 1)]);
        expected.undecodable.insert(a);
        assert_eq!(all, expected);
    }

    #[test]
    fn the_ledger_keeps_what_every_thread_records() {
        let ledger = std::sync::Arc::new(Ledger::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let ledger = ledger.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        ledger.record(Uuid::now_v7(), Expect::Stored);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("recording thread");
        }
        assert_eq!(ledger.accepted().len(), 1000);
    }
}
