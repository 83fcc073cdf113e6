//! Issue 18, PostgreSQL at size: `events` becomes a table partitioned by range of
//! `stored_at` (the database's clock at the commit's transaction), so whole old partitions
//! can be dropped for retention; `event_ids` (application, event id) becomes the one place
//! where an event id is unique, since a unique constraint on a partitioned table must include
//! the partition key. ARCHITECTURE.md, "Schema", says why.
//!
//! An existing `events` table is kept as it is and attached as the first partition,
//! `events_initial` (from MINVALUE to the day after its newest row): its rows are not copied,
//! only scanned once (the partition bound is checked and the new primary key built), and
//! its read indexes are reused as they are. Their ids are copied into `event_ids`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(UP)
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(DOWN)
            .await
            .map(|_| ())
    }
}

const UP: &str = r#"
-- The dedup key: one row per (application, event id) ever stored and not yet past retention.
-- `stored_at` is the stored row's (same transaction, same now()), so retention can forget
-- the ids of the partitions it drops (BRIN: rows arrive in stored_at order).
CREATE TABLE event_ids (
    app_id      text        NOT NULL,
    id          uuid        NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);
INSERT INTO event_ids (app_id, id, stored_at) SELECT app_id, id, stored_at FROM events;
CREATE INDEX event_ids_stored_at_brin ON event_ids USING brin (stored_at);

-- The old table becomes the first partition; its indexes keep their definitions (renamed),
-- so ATTACH adopts them instead of building new ones. Its primary key (app_id, id) cannot be
-- a partition's (it lacks the partition key): event_ids holds that uniqueness now.
ALTER TABLE events RENAME TO events_initial;
ALTER TABLE events_initial DROP CONSTRAINT events_pkey;
ALTER INDEX events_app_time_idx RENAME TO events_initial_app_time_idx;
ALTER INDEX events_app_session_time_idx RENAME TO events_initial_app_session_time_idx;
ALTER INDEX events_app_type_time_idx RENAME TO events_initial_app_type_time_idx;
ALTER INDEX events_stored_at_brin RENAME TO events_initial_stored_at_brin;

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
    PRIMARY KEY (app_id, id, stored_at)
) PARTITION BY RANGE (stored_at);
CREATE INDEX events_app_time_idx ON events (app_id, "timestamp", id);
CREATE INDEX events_app_session_time_idx ON events (app_id, session_id, "timestamp", id);
CREATE INDEX events_app_type_time_idx ON events (app_id, category, name, "timestamp", id);
CREATE INDEX events_stored_at_brin ON events USING brin (stored_at);

-- events_initial: up to the day after its newest row (today when empty, so a fresh database
-- starts on daily partitions at once); then daily partitions until the day after tomorrow.
-- The worker's maintenance creates the next ones ahead (EYE_PARTITION_DAYS wide).
DO $$
DECLARE
    today timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    upper timestamptz;
    next timestamptz;
BEGIN
    SELECT greatest(today,
                    date_trunc('day', max(stored_at) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                        + interval '1 day')
      INTO upper FROM events_initial;
    upper := coalesce(upper, today);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION events_initial FOR VALUES FROM (MINVALUE) TO (%L)', upper);
    WHILE upper < today + interval '2 days' LOOP
        next := upper + interval '1 day';
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                       'events_p' || to_char(upper AT TIME ZONE 'UTC', 'YYYYMMDD'), upper, next);
        upper := next;
    END LOOP;
END
$$;

-- The partitions of `events` with their bounds (MINVALUE and MAXVALUE as NULL), read from the
-- catalog so they are never a second truth; `detach_pending` is a DETACH CONCURRENTLY
-- interrupted half-way, which the maintenance finishes.
CREATE VIEW event_partitions AS
SELECT c.relname::text AS name,
       CASE WHEN b[1] <> 'MINVALUE' THEN btrim(b[1], '''')::timestamptz END AS from_at,
       CASE WHEN b[2] <> 'MAXVALUE' THEN btrim(b[2], '''')::timestamptz END AS to_at,
       i.inhdetachpending AS detach_pending
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                'FROM \((.*)\) TO \((.*)\)') AS b
WHERE i.inhparent = 'events'::regclass;

-- One maintenance at a time across workers: a lease taken by UPDATE (DETACH CONCURRENTLY
-- cannot run in a transaction, so a transaction-scoped lock could not cover it), and what
-- the last run did, for operators.
CREATE TABLE partition_maintenance (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    lease_until  timestamptz NOT NULL DEFAULT '-infinity',
    last_run_at  timestamptz,
    last_report  jsonb
);
INSERT INTO partition_maintenance DEFAULT VALUES;
"#;

const DOWN: &str = r#"
DROP TABLE partition_maintenance;
DROP VIEW event_partitions;
ALTER TABLE events RENAME TO events_partitioned;
ALTER INDEX events_pkey RENAME TO events_partitioned_pkey;
ALTER INDEX events_app_time_idx RENAME TO events_partitioned_app_time_idx;
ALTER INDEX events_app_session_time_idx RENAME TO events_partitioned_app_session_time_idx;
ALTER INDEX events_app_type_time_idx RENAME TO events_partitioned_app_type_time_idx;
ALTER INDEX events_stored_at_brin RENAME TO events_partitioned_stored_at_brin;
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
INSERT INTO events SELECT * FROM events_partitioned ON CONFLICT DO NOTHING;
DROP TABLE events_partitioned;
DROP TABLE event_ids;
CREATE INDEX events_app_time_idx ON events (app_id, "timestamp", id);
CREATE INDEX events_app_session_time_idx ON events (app_id, session_id, "timestamp", id);
CREATE INDEX events_app_type_time_idx ON events (app_id, category, name, "timestamp", id);
CREATE INDEX events_stored_at_brin ON events USING brin (stored_at);
"#;
