//! The per-plan content hashes the fetcher compares against, in PostgreSQL (not memory), so
//! what was published before a restart is not published again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eye_core::entity::provider_plan_hash as hash;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Statement, TransactionTrait,
};

/// Rows per INSERT: 6 parameters each, well under PostgreSQL's 65,535.
const CHUNK: usize = 5000;

/// Moves the read model's `last_seen` of the plans this fetch saw unchanged.
const TOUCH_UNCHANGED: &str = "UPDATE provider_plans p SET last_seen = $2 \
     FROM provider_plan_hashes h \
     WHERE h.provider = $1 AND h.last_seen = $2 AND p.provider = h.provider \
       AND p.base_plan_id = h.base_plan_id AND p.plan_id = h.plan_id \
       AND p.content_hash = h.content_hash AND p.last_seen < $2";

/// (base plan id, plan id) -> content hash.
pub type Hashes = HashMap<(String, String), String>;

/// The hash table of one database.
#[derive(Debug, Clone)]
pub struct HashStore {
    db: DatabaseConnection,
}

impl HashStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Every hash last published for `provider`.
    pub async fn load(&self, provider: &str) -> Result<Hashes, DbErr> {
        let rows: Vec<(String, String, String)> = hash::Entity::find()
            .select_only()
            .columns([
                hash::Column::BasePlanId,
                hash::Column::PlanId,
                hash::Column::ContentHash,
            ])
            .filter(hash::Column::Provider.eq(provider))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|(b, p, h)| ((b, p), h)).collect())
    }

    /// Records the hashes of every plan of a fetch once its changes are confirmed published:
    /// `last_seen` moves for all, `published_at` only where the hash changed. Plans that did
    /// not change are not republished, so their read-model row's `last_seen` is moved here
    /// too (changed ones get theirs from the workers, with their new values).
    pub async fn record(
        &self,
        provider: &str,
        seen: &Hashes,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let rows: Vec<hash::ActiveModel> = seen
            .iter()
            .map(|((base, plan), content_hash)| hash::ActiveModel {
                provider: ActiveValue::Set(provider.to_owned()),
                base_plan_id: ActiveValue::Set(base.clone()),
                plan_id: ActiveValue::Set(plan.clone()),
                content_hash: ActiveValue::Set(content_hash.clone()),
                published_at: ActiveValue::Set(at),
                last_seen: ActiveValue::Set(at),
            })
            .collect();
        let txn = self.db.begin().await?;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
            let on_conflict = OnConflict::columns([
                hash::Column::Provider,
                hash::Column::BasePlanId,
                hash::Column::PlanId,
            ])
            .update_columns([hash::Column::ContentHash, hash::Column::LastSeen])
            .value(
                hash::Column::PublishedAt,
                Expr::cust(
                    "CASE WHEN provider_plan_hashes.content_hash = excluded.content_hash \
                     THEN provider_plan_hashes.published_at ELSE excluded.published_at END",
                ),
            )
            .to_owned();
            hash::Entity::insert_many(chunk)
                .on_conflict(on_conflict)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            TOUCH_UNCHANGED,
            [provider.into(), at.into()],
        ))
        .await?;
        txn.commit().await
    }
}
