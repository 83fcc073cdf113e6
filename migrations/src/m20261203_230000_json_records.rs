//! The JSON API provider (issue 15, part 2): the imported records' read model, and the
//! fetcher's own record of its cycles (the console's fetch history and circuit state).

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
-- One row per (provider, resource, remote id): the latest version of a record a JSON
-- provider imported, kept by the workers from the stored `record` / `record_removed`
-- events. A record gone from the remote is marked removed, never deleted.
CREATE TABLE json_records (
    provider      text        NOT NULL,
    resource      text        NOT NULL,
    remote_id     text        NOT NULL,
    -- UUIDv5 of (provider, resource, remote id): the session of the record's events.
    id            uuid        NOT NULL,
    -- The record it belongs to (a comment's postId), as text.
    parent_id     text,
    content_hash  text        NOT NULL,
    -- The record as the remote sent it (its last version, also once removed).
    data          jsonb       NOT NULL,
    removed       boolean     NOT NULL DEFAULT false,
    removed_at    timestamptz,
    -- Versions stored: new content, a removal and a return each count one.
    versions      integer     NOT NULL DEFAULT 1,
    first_seen    timestamptz NOT NULL,
    -- Fetch time of the version held (a late older version changes nothing).
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (provider, resource, remote_id)
);
CREATE INDEX json_records_parent_idx ON json_records (provider, resource, parent_id, remote_id)
    WHERE parent_id IS NOT NULL;

-- One row per fetch cycle of any provider, written by the fetcher after the cycle.
CREATE TABLE fetch_cycles (
    id            bigserial   PRIMARY KEY,
    provider      text        NOT NULL,
    started_at    timestamptz NOT NULL,
    took_ms       bigint      NOT NULL,
    -- ok, document (read with a document error), failed
    outcome       text        NOT NULL,
    records       bigint      NOT NULL DEFAULT 0,
    changed       bigint      NOT NULL DEFAULT 0,
    removed       bigint      NOT NULL DEFAULT 0,
    rejected      bigint      NOT NULL DEFAULT 0,
    error         text,
    circuit_open  boolean     NOT NULL,
    failures      integer     NOT NULL DEFAULT 0
);
CREATE INDEX fetch_cycles_provider_idx ON fetch_cycles (provider, id);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE fetch_cycles; DROP TABLE json_records")
            .await
            .map(|_| ())
    }
}
