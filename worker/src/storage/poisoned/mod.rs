//! Recording the events of a poisoned message as `poisoned` dead letters (the poison queue's
//! consumer hands the body here). An event already stored is left out: its ack was what got
//! lost, the event was not. An event that already has a verdict keeps it.

mod rows;

use std::collections::HashSet;

use chrono::Utc;
use eye_core::entity::{dead_letter, event};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

pub use rows::{Poisoned, Poisoning, rows};

use super::tombstones::{Tombstones, arrival_of};
use super::{Fault, Store, chunks, classify, rows_per_statement};

impl Store {
    /// Records a poisoned message's events; how many rows were written or updated. When the
    /// database refuses the rows themselves (an application id too long for its index, say),
    /// the message is recorded whole, as one row of bytes, so the poison queue never stalls.
    /// The error returned is transient: retry.
    pub async fn record_poisoned(&self, body: &[u8], why: &Poisoning) -> Result<u64, DbErr> {
        match write(&self.db, &self.tombstones, rows(body, why, Utc::now())).await {
            Err(e) if matches!(classify(&e), Fault::Data(_)) => {
                tracing::error!(error = %e, "poisoned rows refused; recording the message whole");
                let detail = format!("its events could not be recorded one by one: {e}");
                write(
                    &self.db,
                    &self.tombstones,
                    vec![rows::whole(body, why, &detail, Utc::now())],
                )
                .await
            }
            done => done,
        }
    }
}

/// Writes the rows in one transaction; a poisoned event seen again bumps its `attempts` and
/// `last_seen`, and a row of another kind is left as it is.
async fn write(
    db: &DatabaseConnection,
    tombstones: &Tombstones,
    poisoned: Vec<Poisoned>,
) -> Result<u64, DbErr> {
    let stored = stored_already(db, &poisoned).await?;
    let poisoned: Vec<Poisoned> = poisoned
        .into_iter()
        .filter(|p| p.key.as_ref().is_none_or(|k| !stored.contains(k)))
        .collect();
    if poisoned.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    // The events of an erased session are not kept here either (counted as suppressed).
    let payloads: Vec<_> = poisoned.iter().map(|p| p.row.payload.clone()).collect();
    let arrivals: Vec<_> = poisoned
        .iter()
        .zip(&payloads)
        .map(|(p, payload)| match (&p.key, payload) {
            (Some((app, _)), ActiveValue::Set(Some(payload))) => arrival_of(app, payload),
            _ => None,
        })
        .collect();
    let covered = tombstones.screen(&txn, &arrivals).await?;
    let rows: Vec<dead_letter::ActiveModel> = poisoned
        .into_iter()
        .zip(covered)
        .filter(|(_, covered)| !covered)
        .map(|(p, _)| p.row)
        .collect();
    use dead_letter::Column as D;
    let upsert = OnConflict::columns([D::AppId, D::EventId])
        .update_columns([D::Message, D::Reasons, D::Payload, D::Raw, D::LastSeen])
        .value(D::Attempts, Expr::cust("dead_letters.attempts + 1"))
        .action_and_where(Expr::col((dead_letter::Entity, D::Kind)).eq(dead_letter::KIND_POISONED))
        .to_owned();
    let mut written = 0;
    for chunk in chunks(rows, rows_per_statement::<D>()) {
        written += dead_letter::Entity::insert_many(chunk)
            .on_conflict(upsert.clone())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(written)
}

/// The (application, event id) pairs among `poisoned` that are already stored, looked up by
/// the events' primary key.
async fn stored_already(
    db: &DatabaseConnection,
    poisoned: &[Poisoned],
) -> Result<HashSet<(String, Uuid)>, DbErr> {
    let keys: Vec<(String, Uuid)> = poisoned.iter().filter_map(|p| p.key.clone()).collect();
    let mut stored = HashSet::new();
    // Two bind parameters per key.
    for chunk in keys.chunks(rows_per_statement::<event::Column>()) {
        let found: Vec<(String, Uuid)> = event::Entity::find()
            .select_only()
            .columns([event::Column::AppId, event::Column::Id])
            .filter(
                Expr::tuple([
                    Expr::col(event::Column::AppId),
                    Expr::col(event::Column::Id),
                ])
                .in_tuples(chunk.iter().cloned()),
            )
            .into_tuple()
            .all(db)
            .await?;
        stored.extend(found);
    }
    Ok(stored)
}
