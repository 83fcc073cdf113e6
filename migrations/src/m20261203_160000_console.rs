//! The admin console (issue 16): its users (argon2 hashes, never passwords), its sessions
//! (the SHA-256 of the cookie, never the cookie; each with its CSRF token and expiry), and a
//! BRIN index on `events.stored_at` for the Overview's per-minute counts (a few pages per
//! gigabyte, next to nothing on the write path; events arrive in `stored_at` order).

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
CREATE TABLE console_users (
    username        text        PRIMARY KEY CHECK (length(username) BETWEEN 1 AND 64),
    -- PHC string (argon2id).
    password_hash   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE console_sessions (
    -- hex SHA-256 of the cookie's value.
    id          text        PRIMARY KEY,
    -- Who signed in: a console user's name, or `token:<app>` for an admin token.
    who         text        NOT NULL,
    csrf        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);
CREATE INDEX events_stored_at_brin ON events USING brin (stored_at);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP INDEX events_stored_at_brin; DROP TABLE console_sessions; \
                 DROP TABLE console_users",
            )
            .await
            .map(|_| ())
    }
}
