//! Trusted applications and the tokens issued to them. A token itself is never stored: only
//! its `jti` and what revocation and auditing need.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                r#"
CREATE TABLE applications (
    -- The stable id: a token's `sub` and `events.app_id`.
    id                  text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    name                text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- Set once: a disabled application's tokens are all refused.
    disabled_at         timestamptz,
    -- NULL means the api's defaults (EYE_RATE_LIMIT_PER_SEC / EYE_RATE_LIMIT_BURST).
    rate_per_sec        integer     CHECK (rate_per_sec > 0),
    rate_burst          integer     CHECK (rate_burst > 0)
);
CREATE TABLE tokens (
    jti         uuid        PRIMARY KEY,
    app_id      text        NOT NULL REFERENCES applications (id),
    kid         text        NOT NULL,
    -- Space-separated, as in the token's `scope`.
    scopes      text        NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX tokens_app_idx ON tokens (app_id);
-- The api's refresher reads the revoked ones every second or so.
CREATE INDEX tokens_revoked_idx ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE tokens; DROP TABLE applications")
            .await
            .map(|_| ())
    }
}
