//! A stored event (table `events`, partitioned by `stored_at`), unique on (application,
//! event id) through `event_ids` (a partitioned table's own keys must hold `stored_at`).

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub app_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: Uuid,
    pub category: String,
    pub name: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    pub timestamp: DateTimeUtc,
    pub source: String,
    pub received_at: DateTimeUtc,
    pub stored_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
