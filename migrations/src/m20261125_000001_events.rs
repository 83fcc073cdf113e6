//! Stored events, keyed by (application, event id) so a redelivery or a client retry can
//! never make a second row, with the indexes the read side needs.

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
CREATE TABLE events (
    app_id       text        NOT NULL,
    id           uuid        NOT NULL,
    session_id   uuid        NOT NULL,
    category     text        NOT NULL,
    name         text        NOT NULL,
    data         jsonb       NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    source       text        NOT NULL,
    received_at  timestamptz NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);
-- Read paths: by time, by session ordered by time, by type ordered by time. `id` ends each
-- key so keyset pagination on (timestamp, id) is served by the index alone.
CREATE INDEX events_app_time_idx ON events (app_id, "timestamp", id);
CREATE INDEX events_app_session_time_idx ON events (app_id, session_id, "timestamp", id);
CREATE INDEX events_app_type_time_idx ON events (app_id, category, name, "timestamp", id);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE events")
            .await
            .map(|_| ())
    }
}
