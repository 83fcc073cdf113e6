//! Storage of a judged batch in PostgreSQL with sea-orm: the valid events and the dead
//! letters of one batch are written in one transaction, idempotently.

use std::collections::HashMap;

use eye_core::entity::{dead_letter, event};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, TransactionTrait,
    TryInsertResult,
};
use uuid::Uuid;

use crate::provider::read_model::{self, PlanRow};

/// What one commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// New event rows.
    pub stored: u64,
    /// Valid events whose (application, id) was already stored: retries and redeliveries.
    pub duplicates: u64,
    /// Dead letters written or, for a refused event seen before, updated.
    pub dead_lettered: u64,
}

/// The events database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    /// Writes the batch in one transaction, provider plans included (a batch of events only
    /// is one statement). Events already stored are skipped (ON CONFLICT DO NOTHING on the
    /// primary key); a refused event seen before bumps its dead letter's
    /// `attempts` and `last_seen` instead of adding a row.
    pub async fn commit(
        &self,
        events: Vec<event::ActiveModel>,
        dead_letters: Vec<dead_letter::ActiveModel>,
        plans: Vec<PlanRow>,
    ) -> Result<Committed, DbErr> {
        let offered = events.len() as u64;
        let dead_letters = unique_dead_letters(dead_letters);
        let dead_lettered = dead_letters.len() as u64;
        if dead_letters.is_empty() && plans.is_empty() {
            // One statement is atomic by itself: no BEGIN and COMMIT round trips, which are
            // most of the cost of the small batches of a low rate.
            let stored = insert_events(&self.db, events).await?;
            return Ok(Committed {
                stored,
                duplicates: offered - stored,
                dead_lettered,
            });
        }
        let txn = self.db.begin().await?;
        let stored = insert_events(&txn, events).await?;
        if !dead_letters.is_empty() {
            let on_conflict =
                OnConflict::columns([dead_letter::Column::AppId, dead_letter::Column::EventId])
                    .update_columns([
                        dead_letter::Column::Validator,
                        dead_letter::Column::Field,
                        dead_letter::Column::Message,
                        dead_letter::Column::Reasons,
                        dead_letter::Column::Payload,
                        dead_letter::Column::LastSeen,
                    ])
                    .value(
                        dead_letter::Column::Attempts,
                        Expr::cust("dead_letters.attempts + excluded.attempts"),
                    )
                    .to_owned();
            dead_letter::Entity::insert_many(dead_letters)
                .on_conflict(on_conflict)
                .exec_without_returning(&txn)
                .await?;
        }
        read_model::upsert(&txn, plans).await?;
        txn.commit().await?;
        Ok(Committed {
            stored,
            duplicates: offered - stored,
            dead_lettered,
        })
    }
}

/// Inserts the events not stored yet (ON CONFLICT DO NOTHING); how many were new.
async fn insert_events<C: ConnectionTrait>(
    db: &C,
    events: Vec<event::ActiveModel>,
) -> Result<u64, DbErr> {
    if events.is_empty() {
        return Ok(0);
    }
    Ok(
        match event::Entity::insert_many(events)
            .on_conflict_do_nothing()
            .exec_without_returning(db)
            .await?
        {
            TryInsertResult::Inserted(n) => n,
            TryInsertResult::Empty | TryInsertResult::Conflicted => 0,
        },
    )
}

/// PostgreSQL refuses an upsert that touches one row twice, so a batch holding the same
/// refused event more than once (a client retry, a redelivery) keeps its last copy, with
/// `attempts` counting them all.
fn unique_dead_letters(rows: Vec<dead_letter::ActiveModel>) -> Vec<dead_letter::ActiveModel> {
    let mut index: HashMap<(String, Uuid), usize> = HashMap::new();
    let mut out: Vec<dead_letter::ActiveModel> = Vec::with_capacity(rows.len());
    for mut row in rows {
        let key = key_of(&row);
        if let Some(&i) = key.as_ref().and_then(|k| index.get(k)) {
            let seen = out[i].attempts.try_as_ref().copied().unwrap_or(1);
            row.attempts = ActiveValue::Set(seen + 1);
            out[i] = row;
        } else {
            if let Some(k) = key {
                index.insert(k, out.len());
            }
            row.attempts = ActiveValue::Set(1);
            out.push(row);
        }
    }
    out
}

fn key_of(row: &dead_letter::ActiveModel) -> Option<(String, Uuid)> {
    match (row.app_id.try_as_ref(), row.event_id.try_as_ref()) {
        (Some(Some(app)), Some(Some(id))) => Some((app.clone(), *id)),
        _ => None,
    }
}
