//! An issued token (table `tokens`, migration `m20261125_000004_applications`): its id
//! (`jti`) and what revocation needs, never the token itself.

// The entity derives expand to code that names the prelude's items unqualified: the one
// place a sea-orm glob import is needed.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti: Uuid,
    pub app_id: String,
    pub kid: String,
    /// Space-separated, as in the token's `scope` claim.
    pub scopes: String,
    pub issued_at: DateTimeUtc,
    pub expires_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    /// When the api last admitted it (written at most once a minute per api process;
    /// migration `m20261203_235000_erasure_console`).
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
