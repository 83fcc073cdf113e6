//! Provider plans, the read model `/search` serves.

use chrono::NaiveDateTime;
use eye_core::entity::provider_plan;
use rust_decimal::Decimal;
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

/// Plans that were ever online, starting at or after `starts_at` and ending at or before
/// `ends_at` (both inclusive), by start then id, with their latest values.
pub async fn ever_online_within(
    db: &DatabaseConnection,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
) -> Result<Vec<Plan>, StoreError> {
    use provider_plan::Column as C;
    Ok(provider_plan::Entity::find()
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
        .filter(C::EverOnline.eq(true))
        .filter(C::StartsAt.gte(starts_at))
        .filter(C::EndsAt.lte(ends_at))
        // Implied (a plan never ends before it starts; the parser refuses those), and it
        // bounds the index scan on starts_at from both sides.
        .filter(C::StartsAt.lte(ends_at))
        .order_by_asc(C::StartsAt)
        .order_by_asc(C::Id)
        .into_model::<Plan>()
        .all(db)
        .await?)
}
