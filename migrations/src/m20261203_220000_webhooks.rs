//! Webhooks (issue 15, part 1): subscriptions per application, the outbox of deliveries the
//! worker writes in the transaction that stores the events, and every attempt the
//! dispatcher makes.

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
CREATE TABLE webhook_subscriptions (
    id                      uuid        PRIMARY KEY,
    app_id                  text        NOT NULL,
    url                     text        NOT NULL,
    description             text        NOT NULL DEFAULT '',
    -- [{"category"?: text, "name"?: text}, ...]; empty: every event of the application.
    filters                 jsonb       NOT NULL DEFAULT '[]',
    enabled                 boolean     NOT NULL DEFAULT true,
    -- Why the dispatcher disabled it (410, failing too long); NULL when enabled by hand.
    disabled_reason         text,
    -- Strict order: the next delivery waits until the previous one succeeded or gave up.
    fifo                    boolean     NOT NULL DEFAULT false,
    secret                  text        NOT NULL,
    -- The secret before the last rotation, still signed with until previous_expires_at.
    previous_secret         text,
    previous_expires_at     timestamptz,
    -- First failure since the last success (auto-disable after N days).
    failing_since           timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_app_idx ON webhook_subscriptions (app_id, created_at);

-- The outbox: one row per (subscription, event), written in the worker's transaction.
-- webhook-id is derived from the key, so retries and replays carry the same one.
CREATE TABLE webhook_deliveries (
    subscription_id         uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id                uuid        NOT NULL,
    app_id                  text        NOT NULL,
    -- 'event.stored', or 'event.erased' (payload then holds the notification).
    kind                    text        NOT NULL DEFAULT 'event.stored',
    payload                 jsonb,
    seq                     bigserial,
    status                  text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
    attempts                integer     NOT NULL DEFAULT 0,
    -- Due time; while an attempt runs, the lease's end (a dead dispatcher's claim expires).
    next_attempt_at         timestamptz NOT NULL DEFAULT now(),
    created_at              timestamptz NOT NULL DEFAULT now(),
    first_attempt_at        timestamptz,
    last_error              text,
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (subscription_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_fifo_idx ON webhook_deliveries (subscription_id, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_status_idx ON webhook_deliveries (subscription_id, status, seq);

CREATE TABLE webhook_attempts (
    id                      bigserial   PRIMARY KEY,
    subscription_id         uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id                uuid,
    webhook_id              text        NOT NULL,
    -- 'delivery', 'test'.
    trigger                 text        NOT NULL,
    attempted_at            timestamptz NOT NULL DEFAULT now(),
    status_code             integer,
    latency_ms              integer     NOT NULL,
    response                text,
    error                   text
);
CREATE INDEX webhook_attempts_sub_idx ON webhook_attempts (subscription_id, id DESC);
"#,
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TABLE IF EXISTS webhook_attempts; DROP TABLE IF EXISTS webhook_deliveries; \
                 DROP TABLE IF EXISTS webhook_subscriptions;",
            )
            .await?;
        Ok(())
    }
}
