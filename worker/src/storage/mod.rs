//! Storage of judged batches in PostgreSQL with sea-orm: the valid events, the dead letters
//! and the provider plans of one batch are written in one transaction, idempotently. Rows the
//! database refuses are isolated and dead-lettered with its message, so one bad row never
//! holds up the rest.

pub mod erasures;
mod events;
mod fault;
pub mod imports;
pub mod json_records;
pub mod partitions;
pub mod plans;
mod poisoned;
mod projection;
mod rows;
mod tombstones;
pub mod webhooks;

use std::ops::AddAssign;
use std::sync::Arc;

use eye_core::entity::dead_letter;
use eye_core::import::Keep;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, Iterable,
    TransactionTrait,
};

pub use fault::{Fault, classify};
pub use poisoned::{Poisoned, Poisoning};
pub use projection::Projection;
pub use rows::DATABASE_RULE;

use crate::pipeline::Verdict;
use rows::Rows;

/// PostgreSQL's limit of bind parameters in one statement (a u16 in the protocol).
pub(crate) const MAX_PARAMS: usize = 65_535;

/// What one commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// New event rows.
    pub stored: u64,
    /// Valid events whose (application, id) was already stored: retries and redeliveries.
    pub duplicates: u64,
    /// Dead letters written or, for a refused event seen before, updated.
    pub dead_lettered: u64,
    /// Verdicts the database refused, dead-lettered with its message instead.
    pub refused_by_database: u64,
    /// Events of an erased session (a tombstone covers them): not stored, counted on their
    /// erasure.
    pub suppressed: u64,
}

impl AddAssign for Committed {
    fn add_assign(&mut self, other: Self) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.dead_lettered += other.dead_lettered;
        self.refused_by_database += other.refused_by_database;
        self.suppressed += other.suppressed;
    }
}

/// The events database, and the read models that follow stored events.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    projections: Vec<Arc<dyn Projection>>,
    tombstones: tombstones::Tombstones,
}

impl Store {
    pub fn new(db: DatabaseConnection, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self {
            db,
            projections,
            tombstones: tombstones::Tombstones::default(),
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    /// Writes a batch. When the database refuses some of its rows (a [`Fault::Data`]), the
    /// batch is split in halves until each refused verdict stands alone, the rest is stored,
    /// and each refused one becomes a dead letter carrying the database's message. The error
    /// returned is always transient: the caller retries the same batch, and storage being
    /// idempotent, the parts already written are not written twice.
    pub async fn commit(&self, verdicts: &[Verdict]) -> Result<Committed, DbErr> {
        let first = match self.write(verdicts).await {
            Err(e) => e,
            done => return done,
        };
        let Fault::Data(_) = classify(&first) else {
            return Err(first);
        };
        let mut done = Committed::default();
        // Slices known to hold at least one refused row, and the database's message.
        let mut failing = vec![(verdicts, first)];
        while let Some((slice, error)) = failing.pop() {
            if let [alone] = slice {
                done += self.refuse_alone(alone, &error).await?;
                continue;
            }
            let (left, right) = slice.split_at(slice.len() / 2);
            for half in [left, right] {
                match self.write(half).await {
                    Ok(part) => done += part,
                    Err(e) => match classify(&e) {
                        Fault::Data(_) => failing.push((half, e)),
                        Fault::Transient => return Err(e),
                    },
                }
            }
        }
        Ok(done)
    }

    /// Dead-letters one verdict the database refused; if even the full dead letter is
    /// refused, a minimal one (the bytes, the ids, a short message) that nothing can refuse.
    async fn refuse_alone(&self, verdict: &Verdict, error: &DbErr) -> Result<Committed, DbErr> {
        let message = match classify(error) {
            Fault::Data(message) => message,
            Fault::Transient => error.to_string(),
        };
        tracing::warn!(%message, "the database refused a row; dead-lettered");
        metrics::counter!("eye_worker_dead_letters_total", "reason" => DATABASE_RULE).increment(1);
        let mut last = None;
        for minimal in [false, true] {
            let row = rows::refused_by_database(verdict, &message, minimal);
            match insert_dead_letters(&self.db, vec![row]).await {
                Ok(()) => {
                    return Ok(Committed {
                        dead_lettered: 1,
                        refused_by_database: 1,
                        ..Committed::default()
                    });
                }
                Err(e) if matches!(classify(&e), Fault::Data(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        // Not reachable with a sound schema: the minimal row is ids, bytes and short text.
        Err(last.unwrap_or_else(|| DbErr::Custom("dead letter refused".into())))
    }

    /// Writes the verdicts' rows in one transaction, after the tombstones' check
    /// ([`tombstones::Tombstones::screen`]: the events an erasure covers are left out and
    /// counted). Events already stored are skipped (their ids are in `event_ids` already); a
    /// refused event seen before bumps its dead letter's `attempts` and `last_seen` instead of
    /// adding a row. (Every batch is a transaction: the check must take the erasure lock in a
    /// statement before the insert's, see ARCHITECTURE.md, "Erasure".)
    async fn write(&self, verdicts: &[Verdict]) -> Result<Committed, DbErr> {
        let txn = self.db.begin().await?;
        let verdicts: Vec<&Verdict> = verdicts.iter().collect();
        let done = self.write_in(&txn, &verdicts, Keep::First).await?;
        txn.commit().await?;
        Ok(done)
    }

    /// [`Self::write`]'s work inside the caller's transaction (an import's chunk commits its
    /// progress in the same one). `keep` says what a valid event whose (application, id) is
    /// already stored does: nothing ([`Keep::First`]) or replace it ([`Keep::Last`], which
    /// needs `verdicts` to hold each id once).
    pub(crate) async fn write_in(
        &self,
        txn: &DatabaseTransaction,
        verdicts: &[&Verdict],
        keep: Keep,
    ) -> Result<Committed, DbErr> {
        let arrivals: Vec<_> = verdicts.iter().map(|v| v.arrival()).collect();
        let covered = self.tombstones.screen(txn, &arrivals).await?;
        let kept: Vec<&Verdict> = verdicts
            .iter()
            .zip(&covered)
            .filter(|(_, covered)| !**covered)
            .map(|(verdict, _)| *verdict)
            .collect();
        let suppressed = (verdicts.len() - kept.len()) as u64;
        let rows = Rows::of(&kept, &self.projections);
        let offered = rows.events.len() as u64;
        let dead_lettered = rows.dead_letters.len() as u64;
        let stored = match keep {
            Keep::First => events::insert(txn, &rows.events).await?,
            Keep::Last => events::upsert(txn, &rows.events).await?,
        };
        insert_dead_letters(txn, rows.dead_letters).await?;
        for (projection, stored) in self.projections.iter().zip(rows.projected) {
            if !stored.is_empty() {
                projection.write(txn, stored).await?;
            }
        }
        Ok(Committed {
            stored,
            duplicates: offered - stored,
            dead_lettered,
            refused_by_database: 0,
            suppressed,
        })
    }
}

/// Rows of an entity that fit in one statement's bind parameters.
pub fn rows_per_statement<C: Iterable>() -> usize {
    MAX_PARAMS / C::iter().count().max(1)
}

/// `rows` in chunks of at most `size`, without copying them.
pub fn chunks<T>(mut rows: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len() / size + 1);
    while rows.len() > size {
        let rest = rows.split_off(size);
        out.push(std::mem::replace(&mut rows, rest));
    }
    if !rows.is_empty() {
        out.push(rows);
    }
    out
}

/// Upserts dead letters: a refused event seen before bumps `attempts` and `last_seen`.
async fn insert_dead_letters<C: ConnectionTrait>(
    db: &C,
    dead_letters: Vec<dead_letter::ActiveModel>,
) -> Result<(), DbErr> {
    use dead_letter::Column as D;
    for chunk in chunks(dead_letters, rows_per_statement::<D>()) {
        let on_conflict = OnConflict::columns([D::AppId, D::EventId])
            .update_columns([
                // The latest verdict wins: a poisoned event replayed and then refused is
                // invalid now.
                D::Kind,
                D::Validator,
                D::Field,
                D::Message,
                D::Reasons,
                D::Payload,
                D::LastSeen,
            ])
            .value(
                D::Attempts,
                Expr::cust("dead_letters.attempts + excluded.attempts"),
            )
            .to_owned();
        dead_letter::Entity::insert_many(chunk)
            .on_conflict(on_conflict)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_core::entity::event;

    #[test]
    fn chunks_keep_every_row_in_order_within_the_size() {
        for (n, size) in [(0, 3), (1, 3), (3, 3), (7, 3), (10, 1)] {
            let rows: Vec<usize> = (0..n).collect();
            let out = chunks(rows.clone(), size);
            assert!(out.iter().all(|c| !c.is_empty() && c.len() <= size));
            assert_eq!(out.concat(), rows);
        }
    }

    #[test]
    fn every_entity_fits_a_statement_of_thousands_of_rows() {
        assert!(rows_per_statement::<event::Column>() >= 4_000);
        assert!(rows_per_statement::<dead_letter::Column>() >= 4_000);
    }
}
