//! What the fetcher last published for a provider plan (table `provider_plan_hashes`): kept
//! in PostgreSQL so a restarted fetcher republishes nothing unchanged.

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_plan_hashes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub base_plan_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub plan_id: String,
    pub content_hash: String,
    pub published_at: DateTimeUtc,
    pub last_seen: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
