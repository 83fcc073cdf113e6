//! The provider plan read model (what `/search` serves), a [`Projection`] of stored plan
//! events written in the same transaction as them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use eye_core::entity::provider_plan;
use eye_core::{Envelope, Source};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait};

use super::{Projection, chunks, rows_per_statement};
use eye_core::provider::{CATEGORY, PLAN_NAME, PlanRecord};

/// A read-model row with its key and version, so a batch can keep each plan's latest.
#[derive(Debug, Clone)]
pub struct PlanRow {
    key: (String, String, String),
    seen: DateTime<Utc>,
    row: provider_plan::ActiveModel,
}

/// Plans, by (provider, base plan, plan): the latest version of each.
#[derive(Debug)]
pub struct PlanProjection;

impl Projection for PlanProjection {
    fn follows(&self, envelope: &Envelope) -> bool {
        matches!(envelope.source, Source::Provider(_))
            && envelope.event.category == CATEGORY
            && envelope.event.name == PLAN_NAME
    }

    fn write<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        stored: Vec<&'a Envelope>,
    ) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let rows = latest_per_plan(stored.into_iter().filter_map(plan_row).collect());
            for chunk in chunks(rows, rows_per_statement::<provider_plan::Column>()) {
                upsert(txn, chunk).await?;
            }
            Ok(())
        })
    }
}

/// The read-model row of a plan event, or `None` for any other event.
pub fn plan_row(envelope: &Envelope) -> Option<PlanRow> {
    let Source::Provider(provider) = &envelope.source else {
        return None;
    };
    let event = &envelope.event;
    if event.category != CATEGORY || event.name != PLAN_NAME {
        return None;
    }
    let plan = PlanRecord::from_data(&event.data).ok()?;
    let seen = envelope.received_at;
    let key = (
        provider.clone(),
        plan.base_plan_id.clone(),
        plan.plan_id.clone(),
    );
    let row = provider_plan::ActiveModel {
        provider: ActiveValue::Set(provider.clone()),
        base_plan_id: ActiveValue::Set(plan.base_plan_id.clone()),
        plan_id: ActiveValue::Set(plan.plan_id.clone()),
        id: ActiveValue::Set(plan.stable_id(provider)),
        title: ActiveValue::Set(plan.title.clone()),
        starts_at: ActiveValue::Set(plan.starts_at),
        ends_at: ActiveValue::Set(plan.ends_at),
        min_price: ActiveValue::Set(plan.min_price()),
        max_price: ActiveValue::Set(plan.max_price()),
        sell_mode: ActiveValue::Set(plan.sell_mode.clone()),
        ever_online: ActiveValue::Set(plan.sell_mode == "online"),
        content_hash: ActiveValue::Set(plan.content_hash()),
        data: ActiveValue::Set(serde_json::Value::Object(event.data.clone())),
        first_seen: ActiveValue::Set(seen),
        last_seen: ActiveValue::Set(seen),
    };
    Some(PlanRow { key, seen, row })
}

/// Upserts plans: the latest version (by when it was fetched) wins, `first_seen` stays, and
/// `ever_online` never turns back to false. An older version arriving late changes nothing.
/// Rows must be unique per plan (see [`latest_per_plan`]).
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    rows: Vec<provider_plan::ActiveModel>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    use provider_plan::Column as C_;
    let on_conflict = OnConflict::columns([C_::Provider, C_::BasePlanId, C_::PlanId])
        .update_columns([
            C_::Title,
            C_::StartsAt,
            C_::EndsAt,
            C_::MinPrice,
            C_::MaxPrice,
            C_::SellMode,
            C_::ContentHash,
            C_::Data,
            C_::LastSeen,
        ])
        .value(
            C_::EverOnline,
            Expr::cust("provider_plans.ever_online OR excluded.ever_online"),
        )
        .action_and_where(Expr::cust("provider_plans.last_seen <= excluded.last_seen"))
        .to_owned();
    provider_plan::Entity::insert_many(rows)
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// PostgreSQL refuses an upsert touching one row twice: keep each plan's latest version.
pub fn latest_per_plan(rows: Vec<PlanRow>) -> Vec<provider_plan::ActiveModel> {
    let mut latest: HashMap<(String, String, String), PlanRow> = HashMap::new();
    for row in rows {
        let newer = latest.get(&row.key).is_none_or(|old| old.seen <= row.seen);
        if newer {
            latest.insert(row.key.clone(), row);
        }
    }
    latest.into_values().map(|r| r.row).collect()
}
