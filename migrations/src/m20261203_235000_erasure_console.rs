//! Erasure's generation counter (the worker's in-memory tombstones are checked against it
//! under the erasure lock, one tiny read per commit), the api's per-minute accepted counts
//! (the console's Overview) and a token's last use (the console's Applications page).

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
-- One row. Every confirmation adds one, in its transaction under the erasure lock held
-- exclusively; a worker commit reads it under the lock held shared and reloads its
-- tombstones (every confirmed erasure's filter) only when it moved.
CREATE TABLE erasure_generation (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation  bigint  NOT NULL
);
INSERT INTO erasure_generation (id, generation)
SELECT true, count(*) FROM erasures WHERE status <> 'pending';

-- Events accepted by the api (answered 202), per application and minute, added up in
-- memory and flushed every few seconds off the request path.
CREATE TABLE accepted_per_minute (
    app_id      text        NOT NULL,
    minute      timestamptz NOT NULL,
    accepted    bigint      NOT NULL,
    PRIMARY KEY (minute, app_id)
);

-- When a token was last seen by the api (at most once a minute per token and process).
ALTER TABLE tokens ADD COLUMN last_used_at timestamptz;
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE tokens DROP COLUMN last_used_at; DROP TABLE accepted_per_minute; \
                 DROP TABLE erasure_generation",
            )
            .await
            .map(|_| ())
    }
}
