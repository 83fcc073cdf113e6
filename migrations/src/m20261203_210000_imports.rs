//! Bulk imports (issue 14): one row per import (its spec, state, counters and the checkpoint a
//! resumed importer starts after), the staged rows of the uploaded file (written by the api,
//! read by whichever worker holds the import's lease), and the refused rows with their reasons.

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
CREATE TABLE imports (
    id            uuid        PRIMARY KEY,
    app_id        text        NOT NULL,
    -- Format, CSV header and column mapping, deduplication rule (eye_core::import::ImportSpec).
    spec          jsonb       NOT NULL,
    state         text        NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    -- Set once every row of the file is staged: only then may a worker take it.
    staged_rows   bigint,
    rows_read     bigint      NOT NULL DEFAULT 0,
    accepted      bigint      NOT NULL DEFAULT 0,
    refused       bigint      NOT NULL DEFAULT 0,
    stored        bigint      NOT NULL DEFAULT 0,
    duplicates    bigint      NOT NULL DEFAULT 0,
    -- Accepted rows of an erased session (a tombstone covers them): not stored.
    suppressed    bigint      NOT NULL DEFAULT 0,
    -- Last staged row number committed: a resumed importer goes on after it.
    checkpoint    bigint      NOT NULL DEFAULT 0,
    -- Bumped by every change of the row: the id of the progress events (SSE).
    version       bigint      NOT NULL DEFAULT 0,
    error         text,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The worker holding it, until then; another takes over once it passes.
    lease_owner   uuid,
    lease_until   timestamptz,
    attempts      integer     NOT NULL DEFAULT 0
);
CREATE INDEX imports_app_created_idx ON imports (app_id, created_at DESC, id DESC);
CREATE INDEX imports_open_idx ON imports (created_at) WHERE state IN ('queued', 'running');

-- The uploaded file, one row per record (CSV: a JSON array of the fields; NDJSON: the line).
CREATE TABLE import_rows (
    import_id  uuid   NOT NULL,
    row_no     bigint NOT NULL,
    line       text   NOT NULL,
    PRIMARY KEY (import_id, row_no)
);

-- Refused rows: the row number, the column to blame, the reason and the record as read.
CREATE TABLE import_refused (
    import_id  uuid   NOT NULL,
    row_no     bigint NOT NULL,
    "column"   text   NOT NULL,
    message    text   NOT NULL,
    line       text   NOT NULL,
    PRIMARY KEY (import_id, row_no)
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
                "DROP TABLE import_refused; DROP TABLE import_rows; DROP TABLE imports",
            )
            .await
            .map(|_| ())
    }
}
