//! The per-plan content hashes the fetcher compares against, in PostgreSQL (not memory), so
//! what was published before a restart is not published again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eye_core::entity::provider_plan_hash as hash;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement,
    TransactionTrait,
};

/// Rows per INSERT: 6 parameters each, well under PostgreSQL's 65,535.
const CHUNK: usize = 5000;

/// The stored hashes of a chunk's plans ($2, $3): one primary-key probe each (a row-value
/// IN list of a thousand pairs was planned as a scan).
const LOAD_SOME: &str = "SELECT h.base_plan_id, h.plan_id, h.content_hash \
     FROM unnest($2::text[], $3::text[]) AS k(base_plan_id, plan_id) \
     JOIN provider_plan_hashes h ON h.provider = $1 \
       AND h.base_plan_id = k.base_plan_id AND h.plan_id = k.plan_id";

/// Moves the read model's `last_seen` of the plans of the chunk ($3, $4) seen unchanged.
const TOUCH_UNCHANGED: &str = "UPDATE provider_plans p SET last_seen = $2 \
     FROM provider_plan_hashes h, unnest($3::text[], $4::text[]) AS k(base_plan_id, plan_id) \
     WHERE h.provider = $1 AND h.base_plan_id = k.base_plan_id AND h.plan_id = k.plan_id \
       AND p.provider = h.provider AND p.base_plan_id = h.base_plan_id \
       AND p.plan_id = h.plan_id AND p.content_hash = h.content_hash AND p.last_seen < $2";

/// The records of a JSON provider's resource ($2: kept in `base_plan_id`, the remote id in
/// `plan_id`) not seen since $3 and not removed yet; rejections are kept apart.
const UNSEEN: &str = "SELECT plan_id, content_hash FROM provider_plan_hashes \
     WHERE provider = $1 AND base_plan_id = $2 AND last_seen < $3 \
       AND content_hash <> 'removed' AND plan_id NOT LIKE 'rejected:%'";

/// How many records of a JSON provider's resource ($2) are live (not removed, not rejections).
const LIVE: &str = "SELECT count(*) AS n FROM provider_plan_hashes \
     WHERE provider = $1 AND base_plan_id = $2 \
       AND content_hash <> 'removed' AND plan_id NOT LIKE 'rejected:%'";

/// (base plan id, plan id): a plan's key within its provider.
pub type PlanKey = (String, String);

/// Plan key -> content hash.
pub type Hashes = HashMap<PlanKey, String>;

/// The hash table of one database.
#[derive(Debug, Clone)]
pub struct HashStore {
    db: DatabaseConnection,
}

impl HashStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The hashes last published for these plans of `provider` (those it has).
    pub async fn load(&self, provider: &str, keys: &[&PlanKey]) -> Result<Hashes, DbErr> {
        if keys.is_empty() {
            return Ok(Hashes::new());
        }
        let (bases, plans): (Vec<String>, Vec<String>) =
            keys.iter().map(|(b, p)| (b.clone(), p.clone())).unzip();
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                LOAD_SOME,
                [provider.into(), bases.into(), plans.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    (
                        row.try_get("", "base_plan_id")?,
                        row.try_get("", "plan_id")?,
                    ),
                    row.try_get("", "content_hash")?,
                ))
            })
            .collect()
    }

    /// The (remote id, last hash) of the records of `resource` not seen since `since`.
    pub async fn unseen(
        &self,
        provider: &str,
        resource: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, DbErr> {
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                UNSEEN,
                [provider.into(), resource.into(), since.into()],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("", "plan_id")?,
                    row.try_get("", "content_hash")?,
                ))
            })
            .collect()
    }

    /// How many records of `resource` are live (seen and not removed).
    pub async fn live(&self, provider: &str, resource: &str) -> Result<u64, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                LIVE,
                [provider.into(), resource.into()],
            ))
            .await?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records the hashes of plans of a fetch once their changes are confirmed published:
    /// `last_seen` moves for all, `published_at` only where the hash changed. Plans that did
    /// not change are not republished, so their read-model row's `last_seen` is moved here
    /// too (changed ones get theirs from the workers, with their new values).
    pub async fn record(
        &self,
        provider: &str,
        seen: &[(&PlanKey, &String)],
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        if seen.is_empty() {
            return Ok(());
        }
        let (bases, plans): (Vec<String>, Vec<String>) = seen
            .iter()
            .map(|((b, p), _)| (b.clone(), p.clone()))
            .unzip();
        let txn = self.db.begin().await?;
        for entries in seen.chunks(CHUNK) {
            let chunk: Vec<_> = entries
                .iter()
                .map(|&((base, plan), content_hash)| hash::ActiveModel {
                    provider: ActiveValue::Set(provider.to_owned()),
                    base_plan_id: ActiveValue::Set(base.clone()),
                    plan_id: ActiveValue::Set(plan.clone()),
                    content_hash: ActiveValue::Set(content_hash.clone()),
                    published_at: ActiveValue::Set(at),
                    last_seen: ActiveValue::Set(at),
                })
                .collect();
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
            [provider.into(), at.into(), bases.into(), plans.into()],
        ))
        .await?;
        txn.commit().await
    }
}
