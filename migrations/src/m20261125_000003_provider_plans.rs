//! Provider plans: the read model `/search` serves (written by the workers from provider
//! events), and the per-plan content hashes the fetcher keeps so it publishes only what
//! changed, even across restarts.

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
-- Plan ids repeat across base plans, so the key is (provider, base plan, plan).
CREATE TABLE provider_plans (
    provider      text        NOT NULL,
    base_plan_id  text        NOT NULL,
    plan_id       text        NOT NULL,
    -- UUIDv5 of (provider, base plan, plan): the id /search answers, stable across versions.
    id            uuid        NOT NULL UNIQUE,
    title         text        NOT NULL,
    -- Local times as the provider gives them (the feed carries no offset).
    starts_at     timestamp   NOT NULL,
    ends_at       timestamp   NOT NULL,
    min_price     numeric,
    max_price     numeric,
    sell_mode     text        NOT NULL,
    -- Once online, always served (with its latest values), even after leaving the feed.
    ever_online   boolean     NOT NULL,
    content_hash  text        NOT NULL,
    data          jsonb       NOT NULL,
    first_seen    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    PRIMARY KEY (provider, base_plan_id, plan_id)
);
CREATE INDEX provider_plans_search_idx ON provider_plans (starts_at, ends_at) WHERE ever_online;

-- What the fetcher last published for each plan.
CREATE TABLE provider_plan_hashes (
    provider      text        NOT NULL,
    base_plan_id  text        NOT NULL,
    plan_id       text        NOT NULL,
    content_hash  text        NOT NULL,
    published_at  timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    PRIMARY KEY (provider, base_plan_id, plan_id)
);
"#,
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE provider_plan_hashes; DROP TABLE provider_plans")
            .await
            .map(|_| ())
    }
}
