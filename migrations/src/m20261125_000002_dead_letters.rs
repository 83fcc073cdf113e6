//! Dead letters: every event the workers refused, one row per event, with its reasons, and
//! every message they could not decode, with its raw body.

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
CREATE TABLE dead_letters (
    id          uuid        PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('invalid', 'undecodable')),
    app_id      text,
    event_id    uuid,
    source      text,
    category    text,
    name        text,
    -- The first reason, for filtering; `reasons` holds them all as
    -- [{"validator", "field" (JSON pointer), "message"}].
    validator   text,
    field       text,
    message     text        NOT NULL,
    reasons     jsonb       NOT NULL DEFAULT '[]',
    -- The envelope when it decoded, the body as JSON when it parsed, and the raw bytes.
    payload     jsonb,
    raw         bytea,
    attempts    integer     NOT NULL DEFAULT 1,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
-- One row per refused event: a redelivery bumps `attempts`. Undecodable messages have no
-- event id, and NULLs never conflict, so each of them keeps its own row.
CREATE UNIQUE INDEX dead_letters_event_uq ON dead_letters (app_id, event_id);
CREATE INDEX dead_letters_last_seen_idx ON dead_letters (last_seen);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE dead_letters")
            .await
            .map(|_| ())
    }
}
