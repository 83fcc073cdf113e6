//! Feed exports (issue 17): one row per export run (its generation, snapshot bound, state and
//! counters), one row per chunk file it wrote (what a resumed run skips), and the schedules
//! with the lease that lets one process at a time run each.

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
CREATE TABLE exports (
    id             uuid        PRIMARY KEY,
    name           text        NOT NULL,
    -- What to export and where (eye_exporter::ExportSpec as JSON; never credentials).
    spec           jsonb       NOT NULL,
    state          text        NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    -- The records a run exports are those stored at or before this instant: a resumed run
    -- reads exactly the same ones. The generation (folder name) is derived from it.
    snapshot_at    timestamptz NOT NULL,
    generation     text        NOT NULL,
    files_written  integer     NOT NULL DEFAULT 0,
    records        bigint      NOT NULL DEFAULT 0,
    error          text,
    descriptor_key text,
    attempts       integer     NOT NULL DEFAULT 0,
    -- Who runs it and until when (renewed at every chunk); an expired lease is taken over.
    lease_owner    text,
    lease_until    timestamptz,
    schedule_name  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    UNIQUE (name, generation)
);
CREATE INDEX exports_claim_idx ON exports (created_at) WHERE state IN ('pending', 'running');

CREATE TABLE export_files (
    export_id  uuid    NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    file_name  text    NOT NULL,
    records    integer NOT NULL,
    bytes      bigint  NOT NULL,
    sha256     text    NOT NULL,
    -- Keyset position after this chunk's last record: where a resumed run goes on.
    last_key   jsonb   NOT NULL,
    PRIMARY KEY (export_id, seq)
);

CREATE TABLE export_schedules (
    name          text        PRIMARY KEY,
    spec          jsonb       NOT NULL,
    every_secs    integer     NOT NULL CHECK (every_secs > 0),
    next_run_at   timestamptz NOT NULL,
    lease_owner   text,
    lease_until   timestamptz
);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE export_schedules; DROP TABLE export_files; DROP TABLE exports",
            )
            .await
            .map(|_| ())
    }
}
