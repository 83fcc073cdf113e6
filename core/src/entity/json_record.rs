//! A JSON provider's record (table `json_records`): the latest version of each (provider,
//! resource, remote id), kept by the workers; a record gone from the remote is marked removed.

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "json_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub remote_id: String,
    pub id: Uuid,
    pub parent_id: Option<String>,
    pub content_hash: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    pub removed: bool,
    pub removed_at: Option<DateTimeUtc>,
    pub versions: i32,
    pub first_seen: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
