//! A provider plan (table `provider_plans`): the read model `/search` serves, one row per
//! (provider, base plan, plan) with its latest values.

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_plans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub base_plan_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub plan_id: String,
    pub id: Uuid,
    pub title: String,
    pub starts_at: DateTime,
    pub ends_at: DateTime,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
    pub sell_mode: String,
    pub ever_online: bool,
    pub content_hash: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
