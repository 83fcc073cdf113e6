//! sea-orm entities of the `applications` and `tokens` tables (migration 000003).

/// A registered application (table `applications`).
pub mod application {
    // The entity derives expand to code that names the prelude's items unqualified: the
    // one place a sea-orm glob import is needed.
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "applications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub created_at: DateTimeUtc,
        pub disabled_at: Option<DateTimeUtc>,
        pub rate_per_sec: Option<i32>,
        pub rate_burst: Option<i32>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An issued token (table `tokens`): its id and what revocation needs, never the token.
pub mod token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: Uuid,
        pub app_id: String,
        pub kid: String,
        pub scopes: String,
        pub issued_at: DateTimeUtc,
        pub expires_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
