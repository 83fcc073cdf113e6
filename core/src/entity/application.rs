//! A registered application (table `applications`, migration
//! `m20261125_000004_applications`): its id is the tokens' `sub` and the events' `app_id`.

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub created_at: DateTimeUtc,
    pub disabled_at: Option<DateTimeUtc>,
    /// Rate-limit override (events per second, whole system); None: the api's default.
    pub rate_per_sec: Option<i32>,
    /// Bucket-size override; None: the api's default.
    pub rate_burst: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
