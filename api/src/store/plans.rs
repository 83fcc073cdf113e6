//! Provider plans, the read model `/search` serves.

use chrono::NaiveDateTime;
use eye_core::entity::provider_plan;
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::StoreError;

/// A plan as `/search` shows it (not its stored document). Times are the provider's local
/// times, which carry no offset.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Plan {
    pub id: Uuid,
    pub title: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: NaiveDateTime,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
}

/// A `/search` range; an absent end is open (`None`: from the beginning, to the end).
#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
}

/// Where the next page resumes: after this plan in the answer's order (start, then id).
pub type After = (NaiveDateTime, Uuid);

impl Plan {
    /// This plan as the place the next page resumes after.
    pub fn resume_point(&self) -> After {
        (self.starts_at, self.id)
    }
}

/// At most `limit` plans that were ever online, starting at or after `range.starts_at` and
/// ending at or before `range.ends_at` (both inclusive, each only when given), by start then
/// id, after `after` (keyset: one index range scan per page), with their latest values.
pub async fn ever_online_within(
    db: &DatabaseConnection,
    range: Range,
    after: Option<After>,
    limit: u64,
) -> Result<Vec<Plan>, StoreError> {
    use provider_plan::Column as C;
    let mut query = provider_plan::Entity::find()
        // Only what the answer shows (not the plan's stored document).
        .select_only()
        .columns([
            C::Id,
            C::Title,
            C::StartsAt,
            C::EndsAt,
            C::MinPrice,
            C::MaxPrice,
        ])
        .filter(C::EverOnline.eq(true));
    if let Some(starts_at) = range.starts_at {
        query = query.filter(C::StartsAt.gte(starts_at));
    }
    if let Some(ends_at) = range.ends_at {
        // The second is implied (a plan never ends before it starts; the parser refuses
        // those), and it bounds the index scan on starts_at from above.
        query = query
            .filter(C::EndsAt.lte(ends_at))
            .filter(C::StartsAt.lte(ends_at));
    }
    if let Some((starts_at, id)) = after {
        // A row comparison, which PostgreSQL reads as a bound on the (starts_at, id) index.
        query = query.filter(
            Expr::tuple([Expr::col(C::StartsAt), Expr::col(C::Id)])
                .gt(Expr::tuple([Expr::val(starts_at), Expr::val(id)])),
        );
    }
    Ok(query
        .order_by_asc(C::StartsAt)
        .order_by_asc(C::Id)
        .limit(limit)
        .into_model::<Plan>()
        .all(db)
        .await?)
}
