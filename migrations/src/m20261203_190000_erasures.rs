//! Erasure (issue 19): the requests with their audit trail, and the tombstones that keep an
//! erased session's late events out.

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
-- One row per erasure request: the filter, who asked and confirmed, the dry run's counts,
-- the deleter's progress and what was suppressed afterwards. Never the erased data.
CREATE TABLE erasures (
    id                      uuid        PRIMARY KEY,
    app_id                  text        NOT NULL,
    session_id              uuid,
    category                text,
    name                    text,
    time_from               timestamptz,
    time_to                 timestamptz,
    reason                  text        NOT NULL,
    -- `app:<id> token:<jti>` or `cli:<user>`.
    requested_by            text        NOT NULL,
    requested_at            timestamptz NOT NULL DEFAULT now(),
    status                  text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'running', 'done')),
    dry_run_events          bigint      NOT NULL,
    dry_run_dead_letters    bigint      NOT NULL,
    -- The dry run counted up to a cap and took the planner's estimate past it.
    dry_run_estimated       boolean     NOT NULL DEFAULT false,
    confirmed_by            text,
    confirmed_at            timestamptz,
    started_at              timestamptz,
    completed_at            timestamptz,
    deleted_events          bigint      NOT NULL DEFAULT 0,
    deleted_dead_letters    bigint      NOT NULL DEFAULT 0,
    -- Events of the erased session that arrived after the confirmation and were not stored.
    suppressed              bigint      NOT NULL DEFAULT 0,
    -- The deleter holding it (a worker) until then; another takes over once it passes.
    lease_until             timestamptz,
    CHECK (session_id IS NOT NULL OR time_from IS NOT NULL OR time_to IS NOT NULL)
);
CREATE INDEX erasures_app_requested_idx ON erasures (app_id, requested_at, id);
CREATE INDEX erasures_open_idx ON erasures (confirmed_at) WHERE status IN ('confirmed', 'running');

-- A confirmed erasure of a session: its events arriving later are suppressed by the worker.
CREATE TABLE erasure_tombstones (
    app_id      text        NOT NULL,
    session_id  uuid        NOT NULL,
    erasure_id  uuid        NOT NULL REFERENCES erasures (id),
    category    text,
    name        text,
    time_from   timestamptz,
    time_to     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, session_id, erasure_id)
);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE erasure_tombstones; DROP TABLE erasures")
            .await
            .map(|_| ())
    }
}
